/**
 * `loupe pull ORG/NAME[@REV]`: the files Loupe needs from a hub repository, downloaded into the
 * Hugging Face cache in huggingface_hub's layout, so transformers and TransformerLens find them too
 * and Loupe then loads the model by its repo id. The only code in Loupe that opens a connection,
 * and it runs only when the user asks.
 *
 * Each file: HEAD on {endpoint}/{repo}/resolve/{commit}/{path} (not following the CDN redirect)
 * gives its ETag (X-Linked-Etag for LFS files, the sha256 of the content) and size (X-Linked-Size
 * or Content-Length); the bytes go to blobs/{etag}.incomplete, continuing a partial file with an
 * HTTP Range request, then are renamed to blobs/{etag}; snapshots/{commit}/{path} links to the
 * blob (a copy where symlinks are not allowed); refs/{revision} records the commit.
 * @huggingface/hub's modelInfo gives the commit and the file list; its downloadFileToCacheDir has
 * no progress, cancel or resume, hence the code here.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { HubApiError, modelInfo } from "@huggingface/hub";
import { LoupeError, throwIfAborted } from "../errors";
import { blobFile, formatRepoRef, hubCacheDir, isCommitHash, parseRepoRef, refFile, snapshotDir, type Environment, type RepoRef } from "./cache-layout";
import { authorizedFetch, hubEndpoint, hubRefusal, hubToken, isOffline } from "./hub-access";
import { chooseModelFiles, SHARD_INDEX, shardFiles } from "./model-files";

export interface PullProgress {
  /** The file being downloaded (its path in the repo). */
  readonly file: string;
  /** Bytes of all files Loupe needs that are in the cache so far, and their total (grows once a shard index is read). */
  readonly bytes: number;
  readonly totalBytes: number;
}

export interface PullOptions {
  readonly env?: Environment;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: PullProgress) => void;
}

export interface PulledFile {
  readonly path: string;
  readonly size: number;
  /** "cached": the blob was there already; "resumed": a partial download was continued. */
  readonly how: "downloaded" | "resumed" | "cached";
}

export interface PullResult {
  readonly ref: RepoRef;
  readonly commit: string;
  readonly snapshot: string;
  readonly files: readonly PulledFile[];
}

/** Uncompressed transfers, as huggingface_hub asks: sizes and byte ranges then count the file's own bytes. */
const IDENTITY = { "Accept-Encoding": "identity" };

interface RemoteFile {
  readonly path: string;
  readonly etag: string;
  readonly size: number;
}

/** Download a model's files into the hub cache (see the module comment); the snapshot folder comes back. */
export async function pullModel(reference: string, options: PullOptions = {}): Promise<PullResult> {
  const ref = parseRepoRef(reference);
  if (!ref) throw new LoupeError("bad-argument", `"${reference}" is not a hub repo id. Give ORG/NAME (or NAME, as gpt2), optionally @REVISION (a branch, tag or commit), e.g. HuggingFaceTB/SmolLM2-135M-Instruct.`);
  return pullRepoFiles(ref, (files) => {
    const choice = chooseModelFiles(formatRepoRef(ref), files);
    return [...choice.metadata, ...choice.weights];
  }, options);
}

/**
 * Download the files `choose` picks from a repository's file list into the hub cache (a model's,
 * or one dictionary's of a repository holding hundreds); a shard index among them brings its shards.
 */
export async function pullRepoFiles(ref: RepoRef, choose: (files: readonly string[]) => string[], options: PullOptions = {}): Promise<PullResult> {
  const env = options.env ?? process.env;
  if (isOffline(env)) {
    throw new LoupeError(
      "offline",
      `HF_HUB_OFFLINE is set, so Loupe makes no network calls and cannot download ${formatRepoRef(ref)}. Unset HF_HUB_OFFLINE to download; what is already in the cache (${hubCacheDir(env)}) loads without it.`,
    );
  }
  const session = new HubSession(ref, env, options);
  const { commit, files } = await session.repoInfo();
  const wanted = choose(files);
  const pulled: PulledFile[] = [];
  const remote = await Promise.all(wanted.map((f) => session.head(commit, f)));
  session.addToTotal(remote);
  for (const file of remote) pulled.push(await session.fetchIntoCache(commit, file));
  if (wanted.includes(SHARD_INDEX)) {
    const indexPath = path.join(snapshotDir(session.cacheDir, ref.repoId, commit), SHARD_INDEX);
    const shards = await Promise.all(shardFiles(indexPath, fs.readFileSync(indexPath, "utf8")).map((f) => session.head(commit, f)));
    session.addToTotal(shards);
    for (const file of shards) pulled.push(await session.fetchIntoCache(commit, file));
  }
  if (!isCommitHash(ref.revision)) {
    const pointer = refFile(session.cacheDir, ref.repoId, ref.revision);
    fs.mkdirSync(path.dirname(pointer), { recursive: true });
    fs.writeFileSync(pointer, commit);
  }
  return { ref, commit, snapshot: snapshotDir(session.cacheDir, ref.repoId, commit), files: pulled };
}

class HubSession {
  readonly cacheDir: string;
  private readonly endpoint: string;
  private readonly token: string | undefined;
  private readonly fetch: typeof fetch;
  private bytes = 0;
  private totalBytes = 0;
  private lastErrorCode: string | null = null;

  constructor(
    private readonly ref: RepoRef,
    env: Environment,
    private readonly options: PullOptions,
  ) {
    this.cacheDir = hubCacheDir(env);
    this.endpoint = hubEndpoint(env);
    this.token = hubToken(env);
    const authorized = authorizedFetch(this.token, options.signal);
    // @huggingface/hub's errors drop the headers; the hub's reason (X-Error-Code: GatedRepo, ...) is kept here.
    this.fetch = async (input, init) => {
      const response = await authorized(input, init);
      this.lastErrorCode = response.headers.get("X-Error-Code");
      return response;
    };
  }

  /** The commit the revision points at and the repo's file list (GET /api/models/{repo}/revision/{rev}). */
  async repoInfo(): Promise<{ commit: string; files: string[] }> {
    const info = await this.request(undefined, () =>
      modelInfo({ name: this.ref.repoId, revision: this.ref.revision, hubUrl: this.endpoint, additionalFields: ["sha", "filePaths"], fetch: this.fetch }),
    );
    if (!info.sha || !isCommitHash(info.sha)) throw new LoupeError("download-failed", `${this.endpoint} gave no commit for ${formatRepoRef(this.ref)}; try again later.`);
    return { commit: info.sha, files: info.filePaths ?? [] };
  }

  /** ETag and size of one file, from the resolve URL's headers (the CDN redirect is not followed). */
  async head(commit: string, file: string): Promise<RemoteFile> {
    const response = await this.request(file, () => this.fetch(this.resolveUrl(commit, file), { method: "HEAD", redirect: "manual", headers: IDENTITY }));
    this.check(response, file);
    const etag = normaliseEtag(response.headers.get("X-Linked-Etag") ?? response.headers.get("ETag"));
    const size = Number(response.headers.get("X-Linked-Size") ?? response.headers.get("Content-Length"));
    if (!etag || !Number.isSafeInteger(size) || size < 0 || /[/\\]/.test(etag) || etag.startsWith(".")) {
      throw new LoupeError("download-failed", `${this.endpoint} sent no usable ETag or size for ${file}; it may not be a Hugging Face hub (check HF_ENDPOINT).`);
    }
    return { path: file, etag, size };
  }

  addToTotal(files: readonly RemoteFile[]): void {
    for (const f of files) this.totalBytes += f.size;
    this.report("");
  }

  /** The file's blob (downloaded, resumed or already there) and its snapshot link. */
  async fetchIntoCache(commit: string, file: RemoteFile): Promise<PulledFile> {
    const blob = blobFile(this.cacheDir, this.ref.repoId, file.etag);
    let how: PulledFile["how"] = "cached";
    if (!fs.existsSync(blob)) how = await this.download(commit, file, blob);
    else this.bytes += file.size;
    this.report(file.path);
    link(blob, path.join(snapshotDir(this.cacheDir, this.ref.repoId, commit), file.path));
    return { path: file.path, size: file.size, how };
  }

  private async download(commit: string, file: RemoteFile, blob: string): Promise<"downloaded" | "resumed"> {
    const partial = `${blob}.incomplete`;
    fs.mkdirSync(path.dirname(blob), { recursive: true });
    let have = fs.existsSync(partial) ? fs.statSync(partial).size : 0;
    if (have > file.size) have = 0;
    if (have < file.size || file.size === 0) {
      const response = await this.request(file.path, () => this.fetch(this.resolveUrl(commit, file.path), { headers: { ...IDENTITY, ...(have > 0 ? { Range: `bytes=${have}-` } : {}) } }));
      this.check(response, file.path);
      // 206: the server continues from `have`; 200: it sends everything, so start over.
      if (response.status !== 206 || !(response.headers.get("Content-Range") ?? "").startsWith(`bytes ${have}-`)) have = 0;
      this.bytes += have;
      await this.writeBody(response, partial, have > 0 ? "a" : "w", file);
    } else {
      this.bytes += have;
    }
    const got = fs.statSync(partial).size;
    if (got !== file.size) {
      throw new LoupeError("download-failed", `${file.path} stopped at ${got} of ${file.size} bytes. Run the same pull again: it resumes from there.`, partial);
    }
    await verifyContent(partial, file);
    fs.renameSync(partial, blob);
    return have > 0 ? "resumed" : "downloaded";
  }

  private async writeBody(response: Response, partial: string, flags: "a" | "w", file: RemoteFile): Promise<void> {
    const out = await fs.promises.open(partial, flags);
    try {
      if (!response.body) return;
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        await out.write(chunk);
        this.bytes += chunk.byteLength;
        this.report(file.path);
      }
    } catch (error) {
      throw this.asLoupeError(error, file.path, partial);
    } finally {
      await out.close();
    }
  }

  private resolveUrl(commit: string, file: string): string {
    return `${this.endpoint}/${this.ref.repoId}/resolve/${commit}/${file.split("/").map(encodeURIComponent).join("/")}`;
  }

  private check(response: Response, file: string): void {
    if (response.ok || (response.status >= 300 && response.status < 400)) return;
    throw hubRefusal(response.status, response.headers.get("X-Error-Code"), { ...this.describe(), file });
  }

  /** Run a request, turning aborts, refusals and connection failures into LoupeErrors. */
  private async request<T>(file: string | undefined, send: () => Promise<T>): Promise<T> {
    throwIfAborted(this.options.signal);
    try {
      return await send();
    } catch (error) {
      throw this.asLoupeError(error, file);
    }
  }

  private asLoupeError(error: unknown, file: string | undefined, partial?: string): LoupeError {
    if (error instanceof LoupeError) return error;
    if (this.options.signal?.aborted) return new LoupeError("cancelled", `Download of ${formatRepoRef(this.ref)} cancelled${partial ? `; the partial file is kept and the next pull resumes it` : ""}.`);
    if (error instanceof HubApiError) return hubRefusal(error.statusCode, this.lastErrorCode, { ...this.describe(), file });
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOSPC" || code === "EDQUOT") {
      return new LoupeError(
        "download-failed",
        `The disk holding the Hugging Face cache (${this.cacheDir}) is full. Free some space, or set HF_HUB_CACHE to a larger disk, and pull again: the download resumes.`,
        partial,
      );
    }
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return new LoupeError(
      "download-failed",
      `Could not reach ${this.endpoint} for ${file ?? formatRepoRef(this.ref)} (${cause?.code ?? cause?.message ?? (error as Error).message}). Check the connection or HF_ENDPOINT, and pull again: a partial download resumes.`,
    );
  }

  private describe() {
    return { repoId: this.ref.repoId, revision: this.ref.revision, endpoint: this.endpoint, hasToken: this.token !== undefined };
  }

  private report(file: string): void {
    this.options.onProgress?.({ file, bytes: this.bytes, totalBytes: this.totalBytes });
  }
}

/** ETags as huggingface_hub stores them: no weak prefix, no quotes. */
function normaliseEtag(etag: string | null): string | undefined {
  return etag?.replace(/^W\//, "").replace(/"/g, "") || undefined;
}

/** An LFS file's ETag is the sha256 of its content: check it, so a bad resume never becomes a blob. */
async function verifyContent(partial: string, file: RemoteFile): Promise<void> {
  if (!/^[0-9a-f]{64}$/.test(file.etag)) return;
  const hash = createHash("sha256");
  for await (const chunk of fs.createReadStream(partial)) hash.update(chunk as Buffer);
  if (hash.digest("hex") !== file.etag) {
    fs.rmSync(partial, { force: true });
    throw new LoupeError("download-failed", `${file.path} arrived corrupted (its sha256 differs from the hub's). Pull again to download it afresh.`);
  }
}

/** snapshots/{commit}/{path} -> the blob: a relative symlink, or a copy where symlinks are refused (Windows without developer mode). */
function link(blob: string, pointer: string): void {
  if (fs.existsSync(pointer)) return;
  fs.mkdirSync(path.dirname(pointer), { recursive: true });
  try {
    fs.rmSync(pointer, { force: true }); // a dangling link left by a removed blob
    fs.symlinkSync(path.relative(path.dirname(pointer), blob), pointer);
  } catch {
    fs.copyFileSync(blob, pointer);
  }
}
