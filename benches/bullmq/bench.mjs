// BullMQ end to end on Redis: 32 producers add no-op jobs for BENCH_SECONDS while a worker
// of concurrency 32 runs them; prints jobs / (last finished − first added).
import { Queue, Worker } from "bullmq";

const url = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const connection = { host: url.hostname, port: Number(url.port || 6379) };
const name = `cp-bench-${process.pid}-${Date.now()}`;
const seconds = Number(process.env.BENCH_SECONDS ?? 10);

const queue = new Queue(name, { connection });
let done = 0;
let lastFinished = 0;
const worker = new Worker(name, async () => {}, { connection, concurrency: 32 });
worker.on("completed", () => {
  done += 1;
  lastFinished = Date.now();
});

const firstAdded = Date.now();
let added = 0;
const until = firstAdded + seconds * 1000;
async function producer() {
  while (Date.now() < until) {
    await queue.add("noop", { url: "https://example.com/" }, { removeOnComplete: true });
    added += 1;
  }
}
await Promise.all(Array.from({ length: 32 }, producer));
while (done < added) {
  await new Promise((resolve) => setTimeout(resolve, 50));
}
console.log(`jobs ${added}`);
console.log(`jobs_per_second ${(added / ((lastFinished - firstAdded) / 1000)).toFixed(0)}`);
await worker.close();
await queue.obliterate({ force: true });
await queue.close();
