/** The worker's request loop and model state, in-process with a fake channel and fake models. */
import { strict as assert } from "node:assert";
import { setImmediate as yieldToLoop, setTimeout as sleep } from "node:timers/promises";
import { LoupeError } from "../../../src/core/errors";
import { ModelState } from "../../../src/core/requests";
import type { ClientMessage, LoadParams, WorkerMessage } from "../../../src/worker/protocol";
import { serve, type HandlerTable } from "../../../src/worker/server";
import { fromWireError, WorkerInternalError } from "../../../src/worker/wire-errors";

interface FakeMethods {
  echo: { params: { value: number }; result: { value: number } };
  wait: { params: { tag: string; ms: number }; result: string };
  loop: { params: Record<string, never>; result: string };
  throwLoupe: { params: Record<string, never>; result: never };
  throwPlain: { params: Record<string, never>; result: never };
  unsendable: { params: Record<string, never>; result: () => void };
}

/** A channel whose worker side is `serve`, and whose client side records every message. */
function fakeChannel() {
  let listener: ((message: ClientMessage) => void) | undefined;
  const sent: WorkerMessage[] = [];
  const waiters: (() => void)[] = [];
  return {
    sent,
    channel: {
      send: (message: WorkerMessage) => {
        structuredClone(message); // what IPC would refuse, refuse here too
        sent.push(message);
        waiters.splice(0).forEach((wake) => wake());
      },
      onMessage: (l: (message: ClientMessage) => void) => (listener = l),
    },
    deliver: (message: ClientMessage) => listener?.(message),
    /** The final answer (response or error) to request `id`. */
    async answer(id: number): Promise<WorkerMessage> {
      for (;;) {
        const found = sent.find((m) => m.id === id && m.type !== "progress");
        if (found) return found;
        await new Promise<void>((wake) => waiters.push(wake));
      }
    },
  };
}

describe("worker server", () => {
  const ran: string[] = [];
  const handlers: HandlerTable<FakeMethods> = {
    echo: async ({ value }) => ({ value }),
    wait: async ({ tag, ms }) => {
      ran.push(`start ${tag}`);
      await sleep(ms);
      ran.push(`end ${tag}`);
      return tag;
    },
    loop: async (_p, { signal, progress }) => {
      for (let i = 0; !signal.aborted; i++) {
        progress(i, 0);
        await yieldToLoop();
      }
      throw new LoupeError("cancelled", "Cancelled.");
    },
    throwLoupe: async () => {
      throw new LoupeError("missing-file", "No /x/config.json.", "/x/config.json", { kind: "memory-limit", featureNodes: 3 });
    },
    throwPlain: async () => {
      throw new TypeError("undefined is not a function");
    },
    unsendable: async () => () => undefined,
  };
  beforeEach(() => (ran.length = 0));

  it("answers requests with their id", async () => {
    const fake = fakeChannel();
    serve(fake.channel, handlers);
    fake.deliver({ type: "request", id: 7, method: "echo", params: { value: 42 } });
    assert.deepEqual(await fake.answer(7), { type: "response", id: 7, result: { value: 42 } });
  });

  it("stamps a timed request's hops, the handler's own among them, and sends them with the answer; an untimed one gets none", async () => {
    const fake = fakeChannel();
    serve<FakeMethods>(fake.channel, {
      ...handlers,
      echo: async ({ value }, { mark }) => {
        mark?.("echoed");
        return { value };
      },
    });
    fake.deliver({ type: "request", id: 1, method: "echo", params: { value: 1 }, timed: true });
    fake.deliver({ type: "request", id: 2, method: "echo", params: { value: 2 } });
    const timed = await fake.answer(1);
    assert.ok(timed.type === "response" && timed.marks);
    assert.deepEqual(
      timed.marks.map((m) => m.hop),
      ["worker: request received", "worker: request started", "worker: echoed", "worker: reply posted"],
    );
    const at = timed.marks.map((m) => m.at);
    assert.deepEqual(at, [...at].sort((a, b) => a - b), "in the order they happened");
    assert.ok(Math.abs(at[0] - Date.now()) < 60_000, "wall-clock time, comparable across processes");
    assert.deepEqual(await fake.answer(2), { type: "response", id: 2, result: { value: 2 } });
  });

  it("runs requests one at a time in arrival order", async () => {
    const fake = fakeChannel();
    serve(fake.channel, handlers);
    fake.deliver({ type: "request", id: 1, method: "wait", params: { tag: "a", ms: 30 } });
    fake.deliver({ type: "request", id: 2, method: "wait", params: { tag: "b", ms: 0 } });
    await fake.answer(2);
    assert.deepEqual(ran, ["start a", "end a", "start b", "end b"]);
    assert.deepEqual(fake.sent.map((m) => m.id), [1, 2]);
  });

  it("cancels a running handler through its signal, and a queued one before it starts", async () => {
    const fake = fakeChannel();
    serve(fake.channel, handlers);
    fake.deliver({ type: "request", id: 1, method: "loop", params: {} });
    fake.deliver({ type: "request", id: 2, method: "wait", params: { tag: "queued", ms: 0 } });
    fake.deliver({ type: "cancel", id: 2 });
    while (!fake.sent.some((m) => m.type === "progress")) await yieldToLoop();
    fake.deliver({ type: "cancel", id: 1 });
    const first = await fake.answer(1);
    const second = await fake.answer(2);
    assert.ok(first.type === "error" && first.error.code === "cancelled");
    assert.ok(second.type === "error" && second.error.code === "cancelled");
    assert.deepEqual(ran, [], "the cancelled queued request never ran");
    const answers = fake.sent.filter((m) => m.type !== "progress").map((m) => m.id);
    assert.deepEqual(answers, [2, 1], "a queued request is answered at once, not after the job ahead of it");
  });

  it("sends LoupeErrors with code, file and hint, and anything else as an internal error", async () => {
    const fake = fakeChannel();
    serve(fake.channel, handlers);
    fake.deliver({ type: "request", id: 1, method: "throwLoupe", params: {} });
    fake.deliver({ type: "request", id: 2, method: "throwPlain", params: {} });
    fake.deliver({ type: "request", id: 3, method: "nope", params: {} });
    fake.deliver({ type: "request", id: 4, method: "toString", params: {} });
    fake.deliver({ type: "request", id: 5, method: "unsendable", params: {} });
    fake.deliver({ type: "request", id: 6, method: "echo", params: { value: 1 } });
    const errors = await Promise.all([1, 2, 3, 4, 5].map(async (id) => {
      const m = await fake.answer(id);
      assert.equal(m.type, "error");
      return m.type === "error" ? fromWireError(m.error) : undefined;
    }));
    const [loupe, plain, unknown, inherited, unsendable] = errors;
    assert.ok(loupe instanceof LoupeError && loupe.code === "missing-file" && loupe.file === "/x/config.json");
    assert.deepEqual(loupe.hint, { kind: "memory-limit", featureNodes: 3 }, "the editor words the hint on its side of the channel");
    assert.ok(plain instanceof WorkerInternalError && !(plain instanceof LoupeError));
    assert.match(plain.message, /Internal error in the Loupe worker: undefined is not a function/);
    assert.match(plain.workerStack ?? "", /TypeError/);
    assert.ok(unknown instanceof LoupeError && unknown.code === "bad-argument" && /no method "nope"/.test(unknown.message));
    assert.ok(inherited instanceof LoupeError && inherited.code === "bad-argument", "Object.prototype members are not methods");
    assert.ok(unsendable instanceof WorkerInternalError, "a result that cannot cross the channel is an error, not silence");
    assert.deepEqual(await fake.answer(6), { type: "response", id: 6, result: { value: 1 } }, "the loop lives on");
  });
});

class FakeModel {
  disposed = false;
  constructor(readonly folder: string) {}
  async dispose(): Promise<void> {
    this.disposed = true;
  }
}

describe("worker model state", () => {
  function state() {
    const made: FakeModel[] = [];
    let gate: Promise<void> = Promise.resolve();
    const s = new ModelState<FakeModel>(async (params: LoadParams) => {
      await gate;
      if (params.folder.includes("missing")) throw new LoupeError("missing-file", `No ${params.folder}.`, params.folder);
      const model = new FakeModel(params.folder);
      made.push(model);
      return model;
    });
    return { s, made, hold: (p: Promise<void>) => (gate = p) };
  }

  it("keeps one model: loading another folder releases the previous one", async () => {
    const { s, made } = state();
    assert.equal(s.holds({ folder: "/models/a" }), false);
    const a = await s.load({ folder: "/models/a" });
    assert.ok(s.holds({ folder: "/models/a" }) && !s.holds({ folder: "/models/a", compactWeights: true }));
    assert.equal(await s.load({ folder: "/models/a" }), a, "the same folder is not loaded twice");
    const b = await s.load({ folder: "/models/b" });
    assert.deepEqual(made.map((m) => [m.folder, m.disposed]), [["/models/a", true], ["/models/b", false]]);
    assert.equal(s.loaded, b);
    await s.load({ folder: "/models/b", threads: 1 });
    assert.ok(b.disposed, "another thread count means another session");
  });

  it("leaves the current model in place when a load fails or is cancelled", async () => {
    const { s, made, hold } = state();
    const a = await s.load({ folder: "/models/a" });
    await assert.rejects(s.load({ folder: "/models/missing" }), (e: unknown) => e instanceof LoupeError && e.code === "missing-file");
    assert.equal(s.loaded, a);
    assert.equal(a.disposed, false);

    let release = () => {};
    hold(new Promise<void>((r) => (release = r)));
    const controller = new AbortController();
    const loading = s.load({ folder: "/models/c" }, controller.signal);
    controller.abort();
    release();
    await assert.rejects(loading, (e: unknown) => e instanceof LoupeError && e.code === "cancelled");
    assert.equal(s.loaded, a);
    assert.ok(made.find((m) => m.folder === "/models/c")?.disposed, "the model loaded too late is released");
  });

  it("says plainly when nothing is loaded", async () => {
    const { s } = state();
    assert.throws(() => s.loaded, (e: unknown) => e instanceof LoupeError && /No model is loaded/.test(e.message));
    await s.load({ folder: "/models/a" });
    assert.equal(await s.dispose(), true);
    assert.equal(s.current, undefined);
  });
});
