/**
 * A stand-in for the Hugging Face hub on 127.0.0.1, for download tests: it answers the paths
 * `loupe pull` uses with the headers the hub sends.
 *   GET  /api/models/{repo}/revision/{rev}   {sha, siblings, ...}; 401 RepoNotFound, 404 RevisionNotFound
 *   HEAD/GET /{repo}/resolve/{rev}/{path}    small files: 200 with ETag, Content-Length, X-Repo-Commit;
 *                                            LFS files: 302 to /cdn/{sha256} with X-Linked-Etag, X-Linked-Size
 *   GET  /cdn/{sha256}                       the bytes, with Range support (206, Content-Range)
 * Gated repos answer 401/403 with X-Error-Code GatedRepo unless the request carries the allowed
 * token. A transfer can be cut after some bytes (the socket is destroyed), once. The server stops
 * by itself after `lifetimeMs` even if a test forgets it.
 */
import { createHash } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";

export interface FakeRepo {
  readonly repoId: string;
  readonly commit: string;
  readonly files: Readonly<Record<string, Buffer>>;
  /** Token a gated repo accepts (as "Bearer {token}"); undefined: public. */
  readonly gatedToken?: string;
}

export interface LoggedRequest {
  readonly method: string;
  readonly url: string;
  readonly range?: string;
  readonly authorization?: string;
}

export interface FakeHub {
  readonly endpoint: string;
  readonly requests: LoggedRequest[];
  /** The next GET of this file's bytes stops after `bytes` bytes (the connection drops). */
  cutNextTransfer(file: string, bytes: number): void;
  close(): Promise<void>;
}

const isLfs = (file: string) => /\.safetensors$|\.onnx(_data)?$/.test(file);
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
/** A git blob id, as the hub's ETag for small files. */
const gitOid = (b: Buffer) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");

/** lifetimeMs: when it stops by itself; chunkBytes: the pieces a transfer is written in (small: a reader sees many chunks). */
export async function startFakeHub(repos: readonly FakeRepo[], { lifetimeMs = 60_000, chunkBytes = 16 * 1024 } = {}): Promise<FakeHub> {
  const requests: LoggedRequest[] = [];
  const cuts = new Map<string, number>();
  const blobs = new Map<string, { repo: FakeRepo; file: string; bytes: Buffer }>();
  for (const repo of repos) for (const [file, bytes] of Object.entries(repo.files)) if (isLfs(file)) blobs.set(sha256(bytes), { repo, file, bytes });

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    requests.push({ method: req.method ?? "", url: url.pathname, range: req.headers.range, authorization: req.headers.authorization });
    const fail = (status: number, code: string | undefined, message: string) => {
      res.writeHead(status, { "Content-Type": "application/json", ...(code ? { "X-Error-Code": code } : {}) });
      res.end(JSON.stringify({ error: message }));
    };
    const allowed = (repo: FakeRepo) => {
      if (!repo.gatedToken || req.headers.authorization === `Bearer ${repo.gatedToken}`) return true;
      fail(req.headers.authorization ? 403 : 401, "GatedRepo", `Access to model ${repo.repoId} is restricted.`);
      return false;
    };
    // Repo ids with or without an organisation (gpt2), as the hub takes them.
    const findRepo = (repoId: string) => repos.find((r) => r.repoId === repoId);

    let m = /^\/api\/models\/((?:[^/]+\/)?[^/]+)\/revision\/(.+)$/.exec(url.pathname);
    if (m && req.method === "GET") {
      const repo = findRepo(m[1]);
      if (!repo) return fail(401, "RepoNotFound", "Repository not found");
      if (!allowed(repo)) return;
      const rev = decodeURIComponent(m[2]);
      if (rev !== "main" && rev !== repo.commit) return fail(404, "RevisionNotFound", "Invalid rev id");
      res.writeHead(200, { "Content-Type": "application/json" });
      return res.end(
        JSON.stringify({ _id: "0", id: repo.repoId, sha: repo.commit, private: false, gated: repo.gatedToken ? "manual" : false, downloads: 0, likes: 0, lastModified: "2026-01-01T00:00:00.000Z", siblings: Object.keys(repo.files).map((rfilename) => ({ rfilename })) }),
      );
    }
    m = /^\/((?:[^/]+\/)?[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (m && (req.method === "GET" || req.method === "HEAD")) {
      const repo = findRepo(m[1]);
      if (!repo) return fail(401, "RepoNotFound", "Repository not found");
      if (!allowed(repo)) return;
      if (m[2] !== "main" && m[2] !== repo.commit) return fail(404, "RevisionNotFound", "Invalid rev id");
      const file = decodeURIComponent(m[3]);
      const bytes = repo.files[file];
      if (!bytes) return fail(404, "EntryNotFound", `${file} does not exist`);
      if (isLfs(file)) {
        res.writeHead(302, { Location: `/cdn/${sha256(bytes)}`, "X-Repo-Commit": repo.commit, "X-Linked-Etag": `"${sha256(bytes)}"`, "X-Linked-Size": String(bytes.length), ETag: `"${gitOid(bytes)}"` });
        return res.end();
      }
      // Like the hub, small files are gzipped for a client that accepts it: Content-Length is then not the file's size.
      if (/gzip/.test(req.headers["accept-encoding"] ?? "")) {
        const packed = gzipSync(bytes);
        res.writeHead(200, { "X-Repo-Commit": repo.commit, ETag: `"${gitOid(bytes)}"`, "Content-Encoding": "gzip", "Content-Length": String(packed.length) });
        return res.end(req.method === "HEAD" ? undefined : packed);
      }
      return send(req, res, file, bytes, { "X-Repo-Commit": repo.commit, ETag: `"${gitOid(bytes)}"` });
    }
    m = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    const blob = m && blobs.get(m[1]);
    if (blob && (req.method === "GET" || req.method === "HEAD")) return send(req, res, blob.file, blob.bytes, { ETag: `"${m![1]}"` });
    fail(404, undefined, "Not found");
  });

  function send(req: http.IncomingMessage, res: http.ServerResponse, file: string, bytes: Buffer, headers: Record<string, string>): void {
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (range && Number(range[1]) < bytes.length) start = Number(range[1]);
    const status = range ? 206 : 200;
    res.writeHead(status, {
      ...headers,
      "Accept-Ranges": "bytes",
      "Content-Length": String(bytes.length - start),
      ...(range ? { "Content-Range": `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
    });
    if (req.method === "HEAD") return void res.end();
    const cut = cuts.get(file);
    if (cut !== undefined) cuts.delete(file);
    const end = cut === undefined ? bytes.length : Math.min(bytes.length, start + cut);
    // Written in small pieces, so a reader sees several chunks (and can cancel between them).
    let at = start;
    const pump = () => {
      if (at >= end) {
        if (cut === undefined) res.end();
        else res.socket?.destroy();
        return;
      }
      const next = Math.min(end, at + chunkBytes);
      res.write(bytes.subarray(at, next), () => setImmediate(pump));
      at = next;
    };
    pump();
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const stopper = setTimeout(() => server.close(), lifetimeMs);
  stopper.unref();
  server.unref();
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    cutNextTransfer: (file, bytes) => void cuts.set(file, bytes),
    close: () =>
      new Promise<void>((resolve) => {
        clearTimeout(stopper);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
