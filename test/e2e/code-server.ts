/**
 * Starts code-server (VS Code 1.100 in the browser) for the end-to-end tests: a fresh user-data-dir,
 * extensions-dir and config under a temp folder, the packaged VSIX installed into it, auth off,
 * telemetry and update checks off, bound to a free localhost port.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type { Browser } from "playwright-core";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const CODE_SERVER_VERSION = "4.100.3";

/** The code-server executable: $CODE_SERVER_BIN, else the one scripts/install-code-server.sh puts in .cache/. */
export function codeServerBin(): string {
  const bin = process.env.CODE_SERVER_BIN ?? path.join(REPO_ROOT, ".cache", `code-server-${CODE_SERVER_VERSION}`, "node_modules", ".bin", "code-server");
  if (!fs.existsSync(bin)) throw new Error(`code-server not found at ${bin}: run scripts/install-code-server.sh (or set CODE_SERVER_BIN).`);
  return bin;
}

/** The packaged extension: $LOUPE_VSIX, else loupe-linux-x64.vsix in the repository (npm run package). */
export function vsixPath(): string {
  const vsix = process.env.LOUPE_VSIX ?? path.join(REPO_ROOT, "loupe-linux-x64.vsix");
  if (!fs.existsSync(vsix)) throw new Error(`VSIX not found at ${vsix}: run npm run package (or set LOUPE_VSIX).`);
  return vsix;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const request = http.get(url, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on("error", () => resolve(0));
    request.setTimeout(2000, () => {
      request.destroy();
      resolve(0);
    });
  });
}

const USER_SETTINGS = {
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.autoUpdate": false,
  "extensions.autoCheckUpdates": false,
  "extensions.ignoreRecommendations": true,
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "workbench.welcomePage.walkthroughs.openOnInstall": false,
  "workbench.secondarySideBar.defaultVisibility": "hidden",
  "chat.commandCenter.enabled": false,
  "security.workspace.trust.enabled": false,
  "git.enabled": false,
  "editor.minimap.enabled": false,
  "editor.hover.delay": 200,
  "editor.fontSize": 16,
  "files.autoSave": "off",
  "window.restoreWindows": "none",
};

export interface CodeServer {
  readonly url: string;
  readonly root: string;
  readonly userDataDir: string;
  readonly extensionsDir: string;
  readonly workspace: string;
  /** Everything code-server printed. */
  output(): string;
  stop(): Promise<void>;
}

export interface CodeServerOptions {
  /** The folder to open. */
  readonly workspace: string;
  /** A VSIX to install into the fresh extensions-dir first. */
  readonly vsix?: string;
  /** The temp folder for user data, extensions and caches (default: a new one). */
  readonly root?: string;
  /** Extra environment for code-server and so for its extension host. */
  readonly env?: NodeJS.ProcessEnv;
  /** User settings over the defaults below. */
  readonly userSettings?: Record<string, unknown>;
  /** Keep VS Code's workspace trust (default off: every folder is trusted). */
  readonly workspaceTrust?: boolean;
}

/** Install the VSIX (if any) into a fresh extensions-dir and start code-server on `workspace`. */
export async function startCodeServer(options: CodeServerOptions): Promise<CodeServer> {
  const bin = codeServerBin();
  const root = options.root ?? fs.mkdtempSync(path.join(os.tmpdir(), "loupe-e2e-"));
  const userDataDir = path.join(root, "user-data");
  const extensionsDir = path.join(root, "extensions");
  const cacheDir = path.join(root, "loupe-cache");
  const configFile = path.join(root, "code-server.yaml");
  fs.mkdirSync(path.join(userDataDir, "User"), { recursive: true });
  fs.mkdirSync(extensionsDir, { recursive: true });
  fs.mkdirSync(cacheDir, { recursive: true });
  fs.writeFileSync(path.join(userDataDir, "User", "settings.json"), JSON.stringify({ ...USER_SETTINGS, ...options.userSettings }, null, 2));
  // Our own config file, so code-server never writes ~/.config/code-server/config.yaml with a password.
  fs.writeFileSync(configFile, "auth: none\ncert: false\n");

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // Loupe's built ONNX graphs go to the temp folder, not the user's cache.
    LOUPE_CACHE_DIR: cacheDir,
    ...options.env,
  };
  // Never take a password or proxy from the environment of whoever runs the tests.
  delete env.PASSWORD;
  delete env.HASHED_PASSWORD;
  delete env.VSCODE_PROXY_URI;
  // Do not inherit the test runner's tsx loader into code-server or the extension host.
  delete env.NODE_OPTIONS;
  const common = ["--config", configFile, "--user-data-dir", userDataDir, "--extensions-dir", extensionsDir];

  if (options.vsix) {
    const install = spawnSync(bin, [...common, "--force", "--install-extension", options.vsix], { env, encoding: "utf8", timeout: 180_000 });
    if (install.status !== 0 || !/successfully installed/i.test(install.stdout + install.stderr)) {
      throw new Error(`installing ${options.vsix} into code-server failed (exit ${install.status}):\n${install.stdout}\n${install.stderr}`);
    }
  }

  const port = await freePort();
  let output = "";
  const child: ChildProcess = spawn(
    bin,
    [
      ...common,
      "--bind-addr",
      `127.0.0.1:${port}`,
      "--auth",
      "none",
      "--disable-telemetry",
      "--disable-update-check",
      ...(options.workspaceTrust ? [] : ["--disable-workspace-trust"]),
      "--disable-getting-started-override",
      "--ignore-last-opened",
      options.workspace,
    ],
    { env, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`code-server exited with code ${child.exitCode}:\n${output}`);
    if ((await httpStatus(`${url}/healthz`)) === 200) break;
    if (Date.now() > deadline) {
      killGroup(child, "SIGKILL");
      throw new Error(`code-server did not answer on ${url} within 120 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }

  return {
    url,
    root,
    userDataDir,
    extensionsDir,
    workspace: options.workspace,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killGroup(child, "SIGTERM");
      const timer = setTimeout(() => killGroup(child, "SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** code-server runs the extension host and the Loupe worker as children: stop the whole process group we started. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Every extension-host log file code-server wrote under the user-data-dir. */
export function extensionHostLogs(userDataDir: string): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/^(exthost|remoteexthost)\.log$/.test(entry.name)) found.push(full);
    }
  };
  walk(path.join(userDataDir, "logs"));
  return found;
}

/**
 * A suite's end: close the browser, stop code-server, keep its logs (and the extension host's)
 * beside the screenshots for whoever reads a failure, remove the temp folder unless LOUPE_E2E_KEEP.
 */
export async function closeSession(session: { browser?: Browser; server?: CodeServer; root?: string; outputDir: string }): Promise<void> {
  const { browser, server, root, outputDir } = session;
  await browser?.close().catch(() => undefined);
  await server?.stop();
  if (server) {
    fs.mkdirSync(outputDir, { recursive: true });
    for (const log of extensionHostLogs(server.userDataDir)) fs.copyFileSync(log, path.join(outputDir, path.basename(log)));
    fs.writeFileSync(path.join(outputDir, "code-server.log"), server.output());
  }
  if (root && !process.env.LOUPE_E2E_KEEP) fs.rmSync(root, { recursive: true, force: true });
}
