/**
 * An open-loop, paced HTTP load generator for latency at a fixed rate: each
 * request is scheduled at `start + i / rate` and its latency is measured from
 * that scheduled time (no coordinated omission). Run as its own process:
 *
 *   deno run --allow-net bench/_loadgen.ts URL RATE SECONDS CONNECTIONS BODY_FILE
 *
 * Prints one JSON line: {sent, ok, errors, p50, p99, max} (latencies in ms).
 *
 * @module
 */
import { LatencyHistogram } from "./_harness.ts";

if (import.meta.main) {
  const [url, rateText, secondsText, connText, bodyFile] = Deno.args;
  const rate = Number(rateText);
  const seconds = Number(secondsText);
  const connections = Number(connText);
  const body = await Deno.readTextFile(bodyFile!);
  const histogram = new LatencyHistogram();
  const total = Math.floor(rate * seconds);
  let next = 0;
  let ok = 0;
  let errors = 0;
  const start = performance.now() + 100;
  const worker = async () => {
    while (true) {
      const i = next++;
      if (i >= total) return;
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      try {
        const res = await fetch(url!, {
          method: "POST",
          body,
          headers: { "content-type": "application/json" },
        });
        await res.body?.cancel();
        if (res.status === 202) ok++;
        else errors++;
      } catch {
        errors++;
      }
      histogram.record(performance.now() - due);
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  console.log(JSON.stringify({
    sent: total,
    ok,
    errors,
    seconds: (performance.now() - start) / 1000,
    p50: histogram.percentile(50),
    p99: histogram.percentile(99),
    max: histogram.max,
  }));
}
