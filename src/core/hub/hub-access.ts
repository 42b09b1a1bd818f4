/**
 * How Loupe talks to the Hugging Face hub, the only network access it has, and only when the user
 * asks for a download: the endpoint (HF_ENDPOINT), the token (HF_TOKEN, else HF_HOME/token),
 * HF_HUB_OFFLINE, and the hub's refusals turned into messages that say what to do.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../errors";
import { hfHome, type Environment } from "./cache-layout";

export const DEFAULT_ENDPOINT = "https://huggingface.co";

/** HF_ENDPOINT without a trailing slash, else the public hub. */
export function hubEndpoint(env: Environment = process.env): string {
  return (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, "");
}

/** HF_TOKEN, else the token `huggingface-cli login` saved in HF_HOME/token; undefined when neither. */
export function hubToken(env: Environment = process.env): string | undefined {
  if (env.HF_TOKEN?.trim()) return env.HF_TOKEN.trim();
  try {
    return fs.readFileSync(path.join(hfHome(env), "token"), "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/** HF_HUB_OFFLINE as huggingface_hub reads it: 1, true, yes or on (any case). */
export function isOffline(env: Environment = process.env): boolean {
  return ["1", "true", "yes", "on"].includes((env.HF_HUB_OFFLINE ?? "").trim().toLowerCase());
}

/** fetch with the token and the caller's AbortSignal on every request. */
export function authorizedFetch(token: string | undefined, signal: AbortSignal | undefined): typeof fetch {
  return (input, init = {}) => {
    const headers = new Headers(init.headers);
    if (token && !headers.has("Authorization")) headers.set("Authorization", `Bearer ${token}`);
    return fetch(input, { ...init, headers, signal: init.signal ?? signal });
  };
}

/**
 * A refusal from the hub as a LoupeError. The hub names the reason in X-Error-Code (GatedRepo,
 * RepoNotFound, RevisionNotFound, EntryNotFound); without it, the status says what it can.
 */
export function hubRefusal(status: number, errorCode: string | null, what: { repoId: string; revision: string; file?: string; endpoint: string; hasToken: boolean }): LoupeError {
  const page = `${what.endpoint}/${what.repoId}`;
  const tokenHint = what.hasToken
    ? "The token Loupe sent (HF_TOKEN or HF_HOME/token) is not allowed to read it."
    : "No token was sent: set HF_TOKEN, or log in with `huggingface-cli login` (it saves HF_HOME/token).";
  if (errorCode === "GatedRepo" || status === 403) {
    return new LoupeError("download-failed", `${what.repoId} is gated (HTTP ${status}): accept its licence on ${page} while logged in, then use a token of that account. ${tokenHint}`);
  }
  if (status === 401 || errorCode === "RepoNotFound") {
    return new LoupeError("download-failed", `${what.repoId} was not found or is private (HTTP ${status}). Check the repo id on ${page}. ${tokenHint}`);
  }
  if (errorCode === "RevisionNotFound") {
    return new LoupeError("download-failed", `${what.repoId} has no revision "${what.revision}" (HTTP ${status}). Use a branch, tag or commit listed on ${page}/tree/main.`);
  }
  if (status === 404) {
    const thing = what.file ? `${what.file} in ${what.repoId}@${what.revision}` : `${what.repoId}@${what.revision}`;
    return new LoupeError("download-failed", `${thing} was not found on ${what.endpoint} (HTTP 404). Check the repo id and revision.`);
  }
  return new LoupeError("download-failed", `${what.endpoint} answered HTTP ${status} for ${what.file ?? what.repoId}. Try again later; a partial download resumes where it stopped.`);
}
