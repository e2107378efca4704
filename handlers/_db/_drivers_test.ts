import assert from "node:assert/strict";
import { Socket } from "node:net";
import { dropsLateErrors } from "./_drivers.ts";

Deno.test("dropsLateErrors(): an error nobody listens to any more is dropped, not thrown", () => {
  const plain = new Socket();
  assert.throws(() => plain.emit("error", new Error("EPIPE")), /EPIPE/);
  const guarded = dropsLateErrors(new Socket());
  assert.equal(guarded.emit("error", new Error("EPIPE")), false);
});

Deno.test("dropsLateErrors(): errors still reach listeners while there are any", () => {
  const socket = dropsLateErrors(new Socket());
  const seen: string[] = [];
  socket.on("error", (e: Error) => seen.push(e.message));
  assert.equal(socket.emit("error", new Error("ECONNRESET")), true);
  assert.equal(socket.emit("data", Buffer.from("x")), false);
  assert.deepEqual(seen, ["ECONNRESET"]);
  socket.removeAllListeners();
  assert.equal(socket.emit("error", new Error("late")), false);
});
