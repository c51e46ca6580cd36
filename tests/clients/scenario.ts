// One user's scenario through the TypeScript client generated from control-plane's contract
// (@hey-api/openapi-ts), against real `serve` and `worker` processes. Run by
// tests/it/clients.rs, which generates the client into ./client, checks this file with
// `tsc --strict`, then runs it with CP_BASE_URL, CP_API_KEY and CP_SITE_URL set.

import { client } from './client/client.gen';
import {
    cancelJob,
    createJob,
    getArtifact,
    getJob,
    jobEvents,
    listJobs,
    retryJob,
    type Job,
    type NavigateExtractResult,
    type ScreenshotResult,
} from './client';

function check(condition: boolean, what: string): asserts condition {
    if (!condition) {
        throw new Error(`failed: ${what}`);
    }
}

/** The job as the kind `expected`, narrowed by its `job_type`. */
function kind<K extends Job['job_type']>(job: Job, expected: K): Extract<Job, { job_type: K }> {
    check(job.job_type === expected, `a ${expected} job, not ${job.job_type}`);
    return job as Extract<Job, { job_type: K }>;
}

async function main(): Promise<void> {
    const site = process.env.CP_SITE_URL ?? '';
    client.setConfig({
        baseUrl: process.env.CP_BASE_URL ?? '',
        auth: () => process.env.CP_API_KEY ?? '',
        throwOnError: true,
    });

    // Submit a navigate_extract, wait for it with the API's own ?wait=, read typed fields.
    const created = await createJob({
        body: { url: `${site}/`, job_type: 'navigate_extract', strategy: 'http' },
        throwOnError: true,
    });
    const id = created.data.id;
    const done = kind((await getJob({ path: { id }, query: { wait: '30s' }, throwOnError: true })).data, 'navigate_extract');
    check(done.state === 'succeeded', `succeeded: ${JSON.stringify(done.error)}`);
    const result: NavigateExtractResult | null | undefined = done.result;
    check(result !== null && result !== undefined, 'a result');
    check(result.status_code === 200, 'status 200');
    check(result.final_url.startsWith(site), 'the final url');
    check(result.executed_with === 'http', 'executed with http');
    check(typeof result.title === 'string' && result.title.length > 0, 'a title');

    // It is listed, and its timeline ends with its success.
    const page = (await listJobs({ query: { job_type: 'navigate_extract' }, throwOnError: true })).data;
    check(page.jobs.some((job) => job.id === id), 'listed');
    const events = (await jobEvents({ path: { id }, throwOnError: true })).data.events;
    const first = events[0];
    check(first?.kind === 'created', 'created first');
    check(first.detail.priority === 3, 'created at the default priority');
    check(events[events.length - 1]?.kind === 'succeeded', 'succeeded last');

    // A delayed job is cancelled with no body at all.
    const later = await createJob({ body: { url: `${site}/`, delay_ms: 3_600_000 }, throwOnError: true });
    const cancelled = (await cancelJob({ path: { id: later.data.id }, throwOnError: true })).data;
    check(cancelled.state === 'cancelled', 'cancelled');

    // A job that fails (the site answers 404) is retried with no body.
    const failing = await createJob({
        body: { url: `${site}/status/404`, strategy: 'http', max_attempts: 1 },
        throwOnError: true,
    });
    const failed = (await getJob({ path: { id: failing.data.id }, query: { wait: '30s' }, throwOnError: true })).data;
    check(failed.state === 'failed', 'failed');
    check(failed.error?.kind === 'http_status' && failed.error.status_code === 404, 'a 404');
    const retried = (await retryJob({ path: { id: failing.data.id }, throwOnError: true })).data;
    check(['queued', 'running', 'failed'].includes(retried.state), `retried: ${retried.state}`);

    // A screenshot, downloaded as bytes.
    const shoot = await createJob({
        body: { url: `${site}/`, job_type: 'screenshot', strategy: 'vanilla', payload: { full_page: true } },
        throwOnError: true,
    });
    const taken = kind((await getJob({ path: { id: shoot.data.id }, query: { wait: '60s' }, throwOnError: true })).data, 'screenshot');
    check(taken.state === 'succeeded', `screenshot succeeded: ${JSON.stringify(taken.error)}`);
    const image: ScreenshotResult | null | undefined = taken.result;
    check(image !== null && image !== undefined, 'a screenshot result');
    check(image.screenshot.content_type === 'image/png', 'a png');
    const download = await getArtifact({
        path: { id: shoot.data.id, name: image.screenshot.name },
        parseAs: 'blob',
        throwOnError: true,
    });
    const bytes = new Uint8Array(await download.data.arrayBuffer());
    const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
    check(signature.every((byte, i) => bytes[i] === byte), 'the PNG signature');
    check(bytes.length === image.screenshot.bytes, 'every byte');
    console.log('typescript scenario: ok');
}

main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
});
