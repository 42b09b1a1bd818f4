/** Mutators for the fuzz suite: raw bytes, JSON values and safetensors files. */
import type { Prng } from "./prng";

/** Values that break assumptions: wrong types, limits, non-finite look-alikes, prototype keys. */
const INTERESTING: readonly unknown[] = [
  null, true, false, 0, -0, -1, 1, 2, 3, 0.5, -0.5, 1e-300, 1e308, -1e308, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, -(2 ** 53),
  Number.MAX_SAFE_INTEGER, 1e21, 4294967295, 65536,
  "", " ", "0", "1", "-1", "NaN", "Infinity", "null", "true", "gpt2", "llama", "topk", "jumprelu", "standard",
  "blocks.0.hook_resid_post", "blocks.99.hook_resid_post", "__proto__", "constructor", "\u0000", "\ud800", "😀", "x".repeat(300),
  [], [0], [1, 2], [-1], [null], [[]], [1e308, 1e308], {}, { a: 1 }, { __proto__: null }, { toString: 1 },
];

function clone<T>(value: T): T {
  const text = JSON.stringify(value);
  return (text === undefined ? null : JSON.parse(text)) as T;
}

export function interesting(rng: Prng): unknown {
  return clone(rng.pick(INTERESTING));
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every (container, key) in a JSON value, to pick one to change. */
function slots(value: Json, out: Array<{ parent: Json[] | { [key: string]: Json }; key: string | number }> = []): typeof out {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push({ parent: value, key: i });
      // Long numeric arrays (weights) would swamp the choice: sample a few entries only.
      if (i < 4 || i === value.length - 1) slots(v, out);
    });
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      out.push({ parent: value, key: k });
      slots(v, out);
    }
  }
  return out;
}

/** One to three structural changes: replace, delete, duplicate, retype, grow or nest a value. */
export function mutateJson<T>(input: T, rng: Prng): unknown {
  const root = { root: clone(input) as unknown as Json } as { [key: string]: Json };
  const rounds = rng.int(1, 3);
  for (let r = 0; r < rounds; r++) {
    const all = slots(root);
    if (all.length === 0) {
      root.root = interesting(rng) as Json;
      continue;
    }
    const { parent, key } = rng.pick(all);
    const current = (parent as Record<string | number, Json>)[key];
    const set = (v: unknown) => ((parent as Record<string | number, unknown>)[key] = v);
    switch (rng.int(0, 9)) {
      case 0:
      case 1:
      case 2:
        set(interesting(rng));
        break;
      case 3:
        if (Array.isArray(parent)) parent.splice(Number(key), 1);
        else delete parent[key as string];
        break;
      case 4:
        if (typeof current === "number") set(rng.pick([current + 1, current - 1, current * 2, -current, current / 3, Math.floor(current / 2), current * 1000]));
        else set(interesting(rng));
        break;
      case 5:
        if (Array.isArray(current)) {
          if (rng.chance(0.5)) current.push(clone(current[current.length - 1] ?? 0));
          else current.pop();
        } else if (current !== null && typeof current === "object") {
          current[rng.pick(["extra", "__proto__", "constructor", "metadata", "toString", ""])] = interesting(rng) as Json;
        } else set([current]);
        break;
      case 6:
        if (typeof current === "string") set(rng.pick([current.toUpperCase(), current + current, current.slice(1), `${current}\u0000`, ""]));
        else set(JSON.stringify(current) ?? "");
        break;
      case 7:
        // Deep nesting: recursive validators must not blow the stack.
        {
          let deep: unknown = interesting(rng);
          for (let i = rng.int(10, 3000); i > 0; i--) deep = rng.chance(0.5) ? [deep] : { a: deep };
          set(deep);
        }
        break;
      case 8:
        if (Array.isArray(current) && current.length > 0) set(new Array(rng.int(0, 3) * current.length + 1).fill(current[0]));
        else set({ ...(typeof current === "object" && current !== null ? current : {}), [String(rng.int(0, 9))]: interesting(rng) });
        break;
      default:
        set(current === null ? 0 : typeof current === "object" ? null : typeof current === "number" ? String(current) : Number(current));
    }
  }
  return root.root;
}

/** Raw byte damage: flips, overwrites, inserts, deletes, truncation, duplicated runs. */
export function mutateBytes(input: Uint8Array, rng: Prng, focus?: { start: number; end: number }): Uint8Array {
  let bytes: Uint8Array = Uint8Array.from(input);
  const lo = focus?.start ?? 0;
  const at = () => Math.min(bytes.length, lo + Math.floor(rng.float() * Math.max(1, Math.min(bytes.length, focus?.end ?? bytes.length) - lo)));
  const rounds = rng.int(1, 4);
  for (let r = 0; r < rounds; r++) {
    const i = at();
    switch (rng.int(0, 6)) {
      case 0:
        if (i < bytes.length) bytes[i] ^= 1 << rng.int(0, 7);
        break;
      case 1:
        if (i < bytes.length) bytes[i] = rng.pick([0, 0xff, 0x7f, 0x80, 0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x30, 0x39, 0x2d, 0x5c, rng.int(0, 255)]);
        break;
      case 2: {
        const extra = Uint8Array.from({ length: rng.int(1, 16) }, () => rng.int(0, 255));
        bytes = concat(bytes.subarray(0, i), extra, bytes.subarray(i));
        break;
      }
      case 3:
        bytes = concat(bytes.subarray(0, i), bytes.subarray(Math.min(bytes.length, i + rng.int(1, 32))));
        break;
      case 4:
        bytes = bytes.slice(0, i);
        break;
      case 5: {
        const run = bytes.subarray(i, Math.min(bytes.length, i + rng.int(1, 64)));
        bytes = concat(bytes.subarray(0, i), run, run, bytes.subarray(i + run.length));
        break;
      }
      default:
        // Random 32-bit little-endian number over four bytes (lengths, offsets).
        if (i + 4 <= bytes.length) new DataView(bytes.buffer, bytes.byteOffset).setUint32(i, rng.pick([0, 1, 0xffffffff, 0x7fffffff, rng.u32()]), true);
    }
  }
  return bytes;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A safetensors file split into its header JSON and its data. */
export function splitSafetensors(file: Uint8Array): { header: Record<string, unknown>; data: Uint8Array } {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(file.subarray(8, 8 + n)).toString("utf8")) as Record<string, unknown>;
  return { header, data: file.subarray(8 + n) };
}

export function joinSafetensors(header: unknown, data: Uint8Array, lengthDelta = 0): Uint8Array {
  const text = Buffer.from(JSON.stringify(header) ?? "", "utf8");
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(Math.max(0, text.length + lengthDelta)), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

/** Damage a safetensors file where parsers look: the header JSON, its length, or the bytes. */
export function mutateSafetensors(file: Uint8Array, rng: Prng): Uint8Array {
  const { header, data } = splitSafetensors(file);
  const headerEnd = file.length - data.length;
  switch (rng.int(0, 4)) {
    case 0:
    case 1:
      return joinSafetensors(mutateJson(header, rng), data);
    case 2:
      return joinSafetensors(header, rng.chance(0.5) ? data.subarray(0, rng.int(0, data.length)) : data, rng.pick([-1, 1, -8, 8, 1000, -1000]));
    case 3:
      return mutateBytes(file, rng, { start: 0, end: headerEnd });
    default:
      return mutateBytes(file, rng);
  }
}
