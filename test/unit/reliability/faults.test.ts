/**
 * Faults injected into real worker processes (test/reliability/faults.ts holds the scenarios, so
 * `npm run reliability` injects the same ones). Complements worker.test.ts, which covers a worker
 * that crashes itself, ignores cancellation or exits with last words; here the faults come from
 * outside: a kill during real model work, model files changed under a loaded model, a real long
 * job cancelled, and a model too large for the memory limit.
 */
import { strict as assert } from "node:assert";
import { cancelLongJob, changeModelFilesWhileLoaded, killWorkerMidRun, refuseModelOverLimit } from "../../reliability/faults";

describe("faults", function () {
  this.timeout(120_000);

  it("a worker killed mid-generation fails that request clearly and the next one works", async () => {
    assert.equal(await killWorkerMidRun(1), 1);
  });

  it("a deleted model keeps working; a truncated one fails cleanly and names the file", async () => {
    assert.equal(await changeModelFilesWhileLoaded(), 2);
  });

  it("a cancelled long job stops at its signal and leaves no process behind", async () => {
    assert.equal(await cancelLongJob(1), 1);
  });

  it("a model over the memory limit is refused before loading", async () => {
    assert.equal(await refuseModelOverLimit(), 2);
  });
});
