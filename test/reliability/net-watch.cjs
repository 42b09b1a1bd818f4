/**
 * Network watch, preloaded with `node --require` (through NODE_OPTIONS, so forked workers and
 * child processes load it too). Every way Node opens a connection or resolves a name is wrapped:
 * the attempt is appended to $LOUPE_NET_LOG (one JSON line, written synchronously so nothing is
 * lost on exit) and blocked with an error. CommonJS on purpose: --require runs before any loader.
 */
"use strict";
const fs = require("node:fs");
const net = require("node:net");
const dns = require("node:dns");
const http = require("node:http");
const https = require("node:https");
const tls = require("node:tls");
const dgram = require("node:dgram");

const LOG = process.env.LOUPE_NET_LOG;

function describe(args) {
  try {
    return JSON.stringify(args, (_k, v) => (typeof v === "function" ? "[function]" : v)).slice(0, 300);
  } catch {
    return String(args[0]).slice(0, 300);
  }
}

function record(api, args, kind) {
  const line = JSON.stringify({ pid: process.pid, api, kind, target: describe(args), argv: process.argv.slice(1, 3), stack: new Error().stack.split("\n").slice(3, 8).join("\n") });
  if (LOG) fs.appendFileSync(LOG, `${line}\n`);
}

/** A connect to a Unix socket or pipe path (net.connect(path), {path}) stays on this machine. */
function isLocal(args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (typeof first === "string") return !/^\d+$/.test(first);
  return typeof first === "object" && first !== null && typeof first.path === "string" && first.port === undefined;
}

/**
 * Replace owner[name]: a network attempt is recorded and blocked (it throws). With localOk, a
 * connect to a local socket path goes through; `recordLocal` logs it as "local" (tools such as tsx
 * talk to their parent over one), so a test can still see who opened it.
 */
function wrap(owner, name, api, { localOk = false, recordLocal = false } = {}) {
  const original = owner[name];
  if (typeof original !== "function") return;
  const watched = function (...args) {
    if (localOk && isLocal(args)) {
      if (recordLocal) record(api, args, "local");
      return original.apply(this, args);
    }
    record(api, args, "network");
    const error = new Error(`loupe net-watch: network access blocked (${api} ${describe(args)})`);
    error.code = "ELOUPENETBLOCKED";
    throw error;
  };
  Object.defineProperty(watched, "name", { value: original.name });
  owner[name] = watched;
}

// net.connect / createConnection end in Socket.prototype.connect: a local path is logged there, once.
wrap(net.Socket.prototype, "connect", "net.Socket.connect", { localOk: true, recordLocal: true });
wrap(net, "connect", "net.connect", { localOk: true });
wrap(net, "createConnection", "net.createConnection", { localOk: true });
wrap(tls, "connect", "tls.connect");
for (const name of ["lookup", "lookupService", "resolve", "resolve4", "resolve6", "resolveAny", "resolveCname", "resolveMx", "resolveNs", "resolveSrv", "resolveTxt", "reverse"]) {
  wrap(dns, name, `dns.${name}`);
  if (dns.promises) wrap(dns.promises, name, `dns.promises.${name}`);
}
if (dns.Resolver) for (const name of ["resolve", "resolve4", "resolve6", "reverse"]) wrap(dns.Resolver.prototype, name, `dns.Resolver.${name}`);
for (const [mod, label] of [[http, "http"], [https, "https"]]) {
  wrap(mod, "request", `${label}.request`);
  wrap(mod, "get", `${label}.get`);
}
wrap(dgram.Socket.prototype, "send", "dgram.send");
wrap(dgram.Socket.prototype, "connect", "dgram.connect");
if (typeof globalThis.fetch === "function") wrap(globalThis, "fetch", "fetch");
if (typeof globalThis.WebSocket === "function") {
  wrap(globalThis, "WebSocket", "WebSocket");
}

// Proof that this process (a forked worker too) ran with the watch on.
record("preload", [], "loaded");
