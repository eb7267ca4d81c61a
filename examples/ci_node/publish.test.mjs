// The project's own test, run in CI against the dev server (ci.sh, github-workflow.yml).
// It reads the variables the server prints (QSTASH_URL, QSTASH_TOKEN and the signing keys),
// publishes with the official @upstash/qstash client to a receiver of its own, and checks
// that the message arrives signed.

import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";
import { Client, Receiver } from "@upstash/qstash";

const env = process.env;

test("a published job arrives signed", async () => {
  let arrive;
  const arrived = new Promise((resolve) => (arrive = resolve));
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      res.writeHead(200).end();
      const body = Buffer.concat(chunks).toString();
      arrive({ path: req.url, body, signature: req.headers["upstash-signature"] });
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  try {
    const client = new Client({ baseUrl: env.QSTASH_URL, token: env.QSTASH_TOKEN });
    await client.publishJSON({ url: `${url}/jobs`, body: { job: 1 } });
    const timeout = new Promise((_, reject) =>
      setTimeout(() => reject(new Error("nothing arrived in 15 s")), 15_000).unref(),
    );
    const got = await Promise.race([arrived, timeout]);
    assert.equal(got.path, "/jobs");
    assert.deepEqual(JSON.parse(got.body), { job: 1 });
    const receiver = new Receiver({
      currentSigningKey: env.QSTASH_CURRENT_SIGNING_KEY,
      nextSigningKey: env.QSTASH_NEXT_SIGNING_KEY,
    });
    const signed = { signature: got.signature, body: got.body, url: `${url}/jobs` };
    assert.equal(await receiver.verify(signed), true);
  } finally {
    server.close();
  }
});
