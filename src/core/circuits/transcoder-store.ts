/**
 * Transcoder sets kept between requests (the worker's ModelSession holds one store): a set is read
 * from disk once per folder and again only when its files change (config.yaml and every
 * safetensors file in the folder, by mtime and size) or another model is loaded.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileStamp } from "../sae/feature-stats-file";
import { loadTranscoders, TRANSCODER_CONFIG } from "./transcoder-files";
import type { TranscoderSet } from "./transcoder";

export class TranscoderStore {
  private model: object | undefined;
  private readonly entries = new Map<string, { readonly stamp: string; readonly set: TranscoderSet }>();

  /** `capacity`: sets kept at once (a PLT and a CLT set for the same model by default). */
  constructor(private readonly capacity = 2) {}

  /** The set in `folder`, read for `model` (any identity: a different one empties the store). */
  get(folder: string, model: object): TranscoderSet {
    if (model !== this.model) {
      this.entries.clear();
      this.model = model;
    }
    const dir = path.resolve(folder);
    const stamp = folderStamp(dir);
    const hit = this.entries.get(dir);
    if (hit && hit.stamp === stamp) return hit.set;
    const set = loadTranscoders(dir);
    this.entries.delete(dir);
    this.entries.set(dir, { stamp, set });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    return set;
  }
}

function folderStamp(dir: string): string {
  const weights = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".safetensors")).sort() : [];
  return [TRANSCODER_CONFIG, ...weights].map((f) => `${f}=${fileStamp(path.join(dir, f))}`).join("|");
}
