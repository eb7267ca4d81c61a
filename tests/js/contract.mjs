// The official @upstash/qstash JS client against a running emulator (run by tests/test_js_sdk.py).
//
// Reads QSTASH_URL, QSTASH_TOKEN, QSTASH_CURRENT_SIGNING_KEY and QSTASH_NEXT_SIGNING_KEY.
// Starts its own HTTP destination on 127.0.0.1, drives publish, enqueue, batch, URL groups,
// queues and schedules through the JS Client, and checks every delivery with the JS Receiver.
// Prints one JSON document: {"destination", "steps": {name: result}, "deliveries", "errors"}.
// Exits 1 when any step threw.

import http from "node:http";
import { Client, Receiver } from "@upstash/qstash";

const env = process.env;
const client = new Client({ baseUrl: env.QSTASH_URL, token: env.QSTASH_TOKEN, retry: false });
const receiver = new Receiver({
  currentSigningKey: env.QSTASH_CURRENT_SIGNING_KEY,
  nextSigningKey: env.QSTASH_NEXT_SIGNING_KEY,
});

const received = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    received.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
    res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
  });
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const dest = `http://127.0.0.1:${server.address().port}`;

const steps = {};
const errors = [];
async function step(name, fn) {
  try {
    steps[name] = (await fn()) ?? null;
  } catch (error) {
    errors.push({ step: name, error: String(error?.message ?? error) });
  }
}

async function waitFor(count, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (received.length < count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return received.length;
}

await step("publishJSON", () =>
  client.publishJSON({ url: `${dest}/publish`, body: { hello: "js" }, headers: { "X-From": "js" } }),
);

const queue = client.queue({ queueName: "js-queue" });
await step("enqueueJSON", () => queue.enqueueJSON({ url: `${dest}/enqueue`, body: { n: 1 } }));
await step("queue.upsert", () => queue.upsert({ parallelism: 2 }));
await step("queue.get", () => queue.get());
await step("queue.list", () => queue.list());
await step("queue.pause", () => queue.pause());
await step("queue.resume", () => queue.resume());

await step("batchJSON", () =>
  client.batchJSON([
    { url: `${dest}/batch-url`, body: { b: 1 } },
    { url: `${dest}/batch-queue`, body: { b: 2 }, queueName: "js-queue" },
  ]),
);

await step("urlGroups.addEndpoints", () =>
  client.urlGroups.addEndpoints({
    name: "js-group",
    endpoints: [{ name: "first", url: `${dest}/group-1` }, { url: `${dest}/group-2` }],
  }),
);
await step("urlGroups.get", () => client.urlGroups.get("js-group"));
await step("urlGroups.list", () => client.urlGroups.list());
await step("publishJSON.urlGroup", () =>
  client.publishJSON({ urlGroup: "js-group", body: { to: "group" } }),
);

await step("schedules.create", () =>
  client.schedules.create({ destination: `${dest}/cron`, cron: "*/5 * * * *", body: "tick" }),
);
await step("schedules.get", () => client.schedules.get(steps["schedules.create"].scheduleId));
await step("schedules.list", () => client.schedules.list());
await step("schedules.delete", () => client.schedules.delete(steps["schedules.create"].scheduleId));

await waitFor(6);
const deliveries = [];
for (const r of received) {
  const url = dest + r.path;
  const signature = r.headers["upstash-signature"];
  let verified = false;
  let tamperedRejected = false;
  try {
    verified = await receiver.verify({ signature, body: r.body, url });
  } catch (error) {
    errors.push({ step: `verify ${r.path}`, error: String(error?.message ?? error) });
  }
  try {
    await receiver.verify({ signature, body: r.body + "tampered", url });
  } catch {
    tamperedRejected = true;
  }
  deliveries.push({
    path: r.path,
    body: r.body,
    verified,
    tamperedRejected,
    messageId: r.headers["upstash-message-id"],
    topicName: r.headers["upstash-topic-name"] ?? null,
    forwarded: r.headers["x-from"] ?? null,
  });
}

await step("urlGroups.removeEndpoints", () =>
  client.urlGroups.removeEndpoints({ name: "js-group", endpoints: [{ name: "first" }] }),
);
await step("urlGroups.afterRemove", () => client.urlGroups.get("js-group"));
await step("urlGroups.delete", () => client.urlGroups.delete("js-group"));
await step("queue.delete", () => queue.delete());
await step("queue.listAfterDelete", () => queue.list());

server.close();
console.log(JSON.stringify({ destination: dest, steps, deliveries, errors }));
process.exit(errors.length ? 1 : 0);
