// Workflows written with the official @upstash/workflow SDK, served on 127.0.0.1, and the SDK's
// Client, for tests/test_workflows_js.py to drive against the emulator.
//
// Reads QSTASH_URL, QSTASH_TOKEN, QSTASH_CURRENT_SIGNING_KEY and QSTASH_NEXT_SIGNING_KEY
// (every delivery's signature is verified). Prints one line, {"url": ...}, once it listens.
// POST /_do {target: "client" | "dlq", method, args} calls the Client and answers its result
// (or 500 {error, status}); GET /_do/results answers what the workflows recorded, by name;
// DELETE /_do/results forgets it; POST /_do/flags sets flags some workflows read. Every other POST goes to the workflow at that path.

import http from "node:http";
import { Client, WorkflowNonRetryableError, WorkflowRetryAfterError } from "@upstash/workflow";
import { createWorkflow, serve, serveMany } from "@upstash/workflow/nextjs";

const env = process.env;
const client = new Client({ baseUrl: env.QSTASH_URL, token: env.QSTASH_TOKEN });

let results = {};
let flags = {};
const record = (name, value) => {
  (results[name] ??= []).push(value);
};
const failureFunction = (name) => async ({ context, failStatus, failResponse }) => {
  record(name, {
    runId: context.workflowRunId,
    payload: context.requestPayload,
    failStatus,
    failResponse,
  });
};

// Each workflow records what it saw under its own name.
const workflows = {
  "/steps": serve(async (context) => {
    const input = context.requestPayload;
    const a = await context.run("add", () => input.n + 1);
    const b = await context.run("double", async () => a * 2);
    record("steps", {
      runId: context.workflowRunId,
      a,
      b,
      header: context.headers.get("x-tenant"),
      label: context.label ?? null,
      createdAt: context.workflowRunCreatedAt,
    });
    return { total: b };
  }),

  "/sleep": serve(async (context) => {
    const times = [];
    times.push(await context.run("before", () => Date.now()));
    await context.sleep("a week", "7d");
    times.push(await context.run("after sleep", () => Date.now()));
    await context.sleepUntil("until", context.requestPayload.until);
    times.push(await context.run("after sleepUntil", () => Date.now()));
    record("sleep", { runId: context.workflowRunId });
  }),

  "/week": serve(async (context) => {
    await context.run("start", () => "started");
    await context.sleep("a week", "7d");
    const { timeout } = await context.waitForEvent("a day's wait", "never-sent", { timeout: "1d" });
    await context.run("finish", () => ({ timedOut: timeout }));
  }),

  "/nap": serve(async (context) => {
    await context.run("before", () => "awake");
    await context.sleep("nap", 1);
    await context.run("after", () => record("nap", context.workflowRunId));
  }),

  "/parallel": serve(async (context) => {
    const [a, b, c] = await Promise.all([
      context.run("a", () => "A"),
      context.run("b", async () => "B"),
      context.sleep("c", 60),
    ]);
    const d = await context.run("after", () => `${a}${b}${c ?? ""}`);
    record("parallel", { runId: context.workflowRunId, d });
  }),

  "/call": serve(async (context) => {
    const { status, body, header } = await context.call("third party", {
      url: context.requestPayload.url,
      method: "POST",
      body: JSON.stringify({ question: 42 }),
      headers: { "X-Call": "yes" },
      retries: context.requestPayload.retries ?? 0,
    });
    record("call", { runId: context.workflowRunId, status, body, type: header["Content-Type"] });
  }),

  "/failing": serve(
    async (context) => {
      await context.run("fine", () => "ok");
      await context.run("boom", () => {
        throw new Error("boom in js");
      });
    },
    { failureFunction: failureFunction("failing") },
  ),

  "/nonretryable": serve(
    async (context) => {
      await context.run("fine", () => "ok");
      throw new WorkflowNonRetryableError("do not retry me");
    },
    { failureFunction: failureFunction("nonretryable") },
  ),

  "/flaky": serve(
    async (context) => {
      await context.run("fine", () => "ok");
      await context.run("flaky", () => {
        record("flaky-attempts", Date.now());
        throw new Error("still flaky");
      });
    },
    { failureFunction: failureFunction("flaky") },
  ),

  "/retry-after": serve(async (context) => {
    await context.run("fine", () => "ok");
    await context.run("busy", () => {
      record("retry-after-attempts", Date.now());
      if ((results["retry-after-attempts"] ?? []).length < 2) {
        throw new WorkflowRetryAfterError("come back later", 30);
      }
      return "done";
    });
  }),

  "/cancel-inside": serve(async (context) => {
    await context.run("first", () => "one");
    record("cancel-inside", { runId: context.workflowRunId });
    await context.cancel();
    await context.run("never", () => record("cancel-inside-never", true));
  }),

  "/waiting": serve(async (context) => {
    const { eventId, timeout } = context.requestPayload;
    const runId = await context.run("id", () => context.workflowRunId);
    const result = await context.waitForEvent("wait", eventId, { timeout: timeout ?? "1d" });
    record("waiting", { runId, ...result });
  }),

  "/notifier": serve(async (context) => {
    const { eventId, data } = context.requestPayload;
    const { notifyResponse } = await context.notify("notify", eventId, data);
    record("notifier", { runId: context.workflowRunId, notified: notifyResponse.length });
  }),

  "/quota": serve(
    async (context) => {
      await context.call("huge retries", {
        url: context.requestPayload.url,
        method: "GET",
        retries: 1_000_000,
      });
    },
    { failureFunction: failureFunction("quota") },
  ),

  "/resumable": serve(
    async (context) => {
      const first = await context.run("first", () => {
        record("resumable-first", context.workflowRunId);
        return "one";
      });
      const second = await context.run("second", () => {
        if (!flags.healed) throw new Error("not healed yet");
        return "two";
      });
      record("resumable", { runId: context.workflowRunId, first, second });
    },
    {
      failureFunction: async ({ context, failStatus }) => {
        record("resumable-failure", { runId: context.workflowRunId, failStatus });
        if (flags.failureFails) throw new Error("the failure function fails too");
      },
    },
  ),

  "/webhook": serve(async (context) => {
    const webhook = await context.createWebhook("create webhook");
    await context.run("share", () => record("webhook-url", webhook));
    const { timeout, request } = await context.waitForWebhook("wait webhook", webhook, "1d");
    record("webhook", {
      timeout,
      method: request?.method,
      body: request ? await request.text() : null,
      header: request?.headers.get("x-hook") ?? null,
    });
  }),
};

const child = createWorkflow(async (context) => {
  const input = context.requestPayload;
  if (input.fail) {
    throw new WorkflowNonRetryableError("child failed");
  }
  const out = await context.run("child step", () => `child got ${input.value}`);
  return { out };
});
const parent = createWorkflow(async (context) => {
  const invoked = await context.invoke("invoke child", {
    workflow: child,
    body: context.requestPayload,
  });
  record("invoke", { runId: context.workflowRunId, ...invoked });
});
const many = serveMany({ parent, child });

const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks).toString();
  const url = new URL(req.url, `http://${req.headers.host}`);
  const reply = (status, data, headers = {}) => {
    res.writeHead(status, { "Content-Type": "application/json", ...headers });
    res.end(typeof data === "string" ? data : JSON.stringify(data ?? null));
  };
  try {
    if (url.pathname === "/_do/flags") {
      flags = { ...flags, ...JSON.parse(body) };
      return reply(200, flags);
    }
    if (url.pathname === "/_do/results") {
      if (req.method === "DELETE") {
        results = {};
        flags = {};
      }
      return reply(200, results);
    }
    if (url.pathname === "/_do") {
      const { target, method, args } = JSON.parse(body);
      const on = target === "dlq" ? client.dlq : client;
      return reply(200, await on[method](...(args ?? [])));
    }
    const handler = url.pathname.startsWith("/many/") ? many.POST : workflows[url.pathname]?.POST;
    if (!handler) return reply(404, { error: `no workflow at ${url.pathname}` });
    const request = new Request(url, {
      method: req.method,
      headers: Object.entries(req.headers).flatMap(([k, v]) =>
        Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]],
      ),
      body: ["GET", "HEAD"].includes(req.method) ? undefined : body,
    });
    const response = await handler(request);
    res.writeHead(response.status, Object.fromEntries(response.headers.entries()));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (error) {
    reply(500, { error: String(error?.message ?? error), status: error?.status ?? null });
  }
});

server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }));
});
