import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomTranscoders, saveTranscoders, TranscoderStore } from "../../../src/core/circuits";
import { scratchDir } from "../../helpers/fixtures";

describe("circuits: the transcoder store", () => {
  it("reads a folder once, again when a file changes, and forgets everything when the model changes", () => {
    const dir = scratchDir("tc-store");
    saveTranscoders(dir, randomTranscoders({ kind: "plt", nLayers: 2, dModel: 4, dTranscoder: 6, seed: 1 }));
    const store = new TranscoderStore();
    const model = {};
    const first = store.get(dir, model);
    assert.equal(store.get(dir, model), first, "the same folder, unchanged: no second read");

    // A retrained layer (new contents, later mtime) is read again.
    saveTranscoders(dir, randomTranscoders({ kind: "plt", nLayers: 2, dModel: 4, dTranscoder: 6, seed: 2 }));
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(path.join(dir, "layer_1.safetensors"), later, later);
    const second = store.get(dir, model);
    assert.notEqual(second, first);
    assert.notDeepEqual(Array.from(second.layers[1].W_enc), Array.from(first.layers[1].W_enc));
    assert.equal(store.get(dir, model), second);

    // Another model: the set is read again (its fit is checked against the new model by the caller).
    assert.notEqual(store.get(dir, {}), second);
  });
});
