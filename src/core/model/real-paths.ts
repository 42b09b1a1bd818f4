/**
 * Weight files as onnxruntime must see them. It refuses external data whose real path leaves the
 * folder it was given ("External data path escapes model directory"), and a hub snapshot's files
 * are symlinks into ../../blobs/: so the folder handed to onnxruntime is where the data really is,
 * and each location is the real file's path from there.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** The deepest folder containing every given folder. */
export function commonFolder(folders: readonly string[]): string {
  let common = folders[0];
  for (const folder of folders) {
    while (folder !== common && !folder.startsWith(common.endsWith(path.sep) ? common : common + path.sep)) common = path.dirname(common);
  }
  return common;
}

/** Real data folder and real locations for files named relative to `dir` (symlinks followed). */
export function realLocations(dir: string, locations: readonly string[]): { dataDir: string; located: Map<string, string> } {
  const real = new Map(locations.map((l) => [l, fs.realpathSync(path.join(dir, l))]));
  const dataDir = real.size ? commonFolder([...real.values()].map((f) => path.dirname(f))) : fs.realpathSync(dir);
  return { dataDir, located: new Map([...real].map(([l, f]) => [l, path.relative(dataDir, f)])) };
}
