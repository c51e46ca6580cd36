"""One user's scenario through the Python client generated from control-plane's contract
(openapi-python-client), against real `serve` and `worker` processes. Run by
tests/it/clients.rs, which generates the client beside this file, checks this file with
`mypy --strict`, then runs it with CP_BASE_URL, CP_API_KEY and CP_SITE_URL set."""

import os
from typing import TypeVar

from cp_client import AuthenticatedClient
from cp_client.api.jobs import (
    cancel_job,
    create_job,
    get_artifact,
    get_job,
    job_events,
    list_jobs,
    retry_job,
)
from cp_client.models import (
    CreatedEvent,
    ErrorKind,
    EventsPage,
    JobError,
    JobsPage,
    JobState,
    JobType,
    NavigateExtractJob,
    NavigateExtractRequest,
    NavigateExtractResult,
    ScreenshotJob,
    ScreenshotPayload,
    ScreenshotRequest,
    ScreenshotRequestJobType,
    ScreenshotResult,
    Strategy,
    SucceededEvent,
)
from cp_client.types import File

T = TypeVar("T")


def expect(answer: object, kind: type[T]) -> T:
    """The answer as `kind`, or the failure with what the server said."""
    assert isinstance(answer, kind), f"expected {kind.__name__}, got {answer!r}"
    return answer


def main() -> None:
    site = os.environ["CP_SITE_URL"]
    client = AuthenticatedClient(
        base_url=os.environ["CP_BASE_URL"],
        token=os.environ["CP_API_KEY"],
        raise_on_unexpected_status=True,
        timeout=None,
    )

    # Submit a navigate_extract, wait for it with the API's own ?wait=, read typed fields.
    request = NavigateExtractRequest(url=f"{site}/", strategy=Strategy.HTTP)
    job = expect(create_job.sync(client=client, body=request), NavigateExtractJob)
    done = expect(get_job.sync(job.id, client=client, wait="30s"), NavigateExtractJob)
    assert done.state == JobState.SUCCEEDED, done.error
    result = expect(done.result, NavigateExtractResult)
    assert result.status_code == 200
    assert result.final_url.startswith(site)
    assert result.executed_with == Strategy.HTTP
    assert isinstance(result.title, str) and result.title, result.title
    assert isinstance(result.took_ms, int)

    # It is listed, and its timeline ends with its success.
    page = expect(
        list_jobs.sync(client=client, job_type=JobType.NAVIGATE_EXTRACT), JobsPage
    )
    assert any(listed.id == job.id for listed in page.jobs)
    events = expect(job_events.sync(job.id, client=client), EventsPage).events
    created = expect(events[0], CreatedEvent)
    assert created.detail.priority == 3
    assert isinstance(events[-1], SucceededEvent), events[-1]

    # A delayed job is cancelled with no body at all.
    later = NavigateExtractRequest(url=f"{site}/", delay_ms=3_600_000)
    delayed = expect(create_job.sync(client=client, body=later), NavigateExtractJob)
    cancelled = expect(cancel_job.sync(delayed.id, client=client), NavigateExtractJob)
    assert cancelled.state == JobState.CANCELLED

    # A job that fails (the site answers 404) is retried with no body.
    missing = NavigateExtractRequest(
        url=f"{site}/status/404", strategy=Strategy.HTTP, max_attempts=1
    )
    failing = expect(create_job.sync(client=client, body=missing), NavigateExtractJob)
    failed = expect(get_job.sync(failing.id, client=client, wait="30s"), NavigateExtractJob)
    assert failed.state == JobState.FAILED
    error = expect(failed.error, JobError)
    assert error.kind == ErrorKind.HTTP_STATUS
    assert error.status_code == 404
    retried = expect(retry_job.sync(failing.id, client=client), NavigateExtractJob)
    assert retried.state in (JobState.QUEUED, JobState.RUNNING, JobState.FAILED)
    assert retried.max_attempts >= 1

    # A screenshot, downloaded as bytes.
    shoot = ScreenshotRequest(
        url=f"{site}/",
        job_type=ScreenshotRequestJobType.SCREENSHOT,
        strategy=Strategy.VANILLA,
        payload=ScreenshotPayload(full_page=True),
    )
    shot = expect(create_job.sync(client=client, body=shoot), ScreenshotJob)
    taken = expect(get_job.sync(shot.id, client=client, wait="60s"), ScreenshotJob)
    assert taken.state == JobState.SUCCEEDED, taken.error
    image = expect(taken.result, ScreenshotResult)
    assert image.screenshot.content_type == "image/png"
    download = expect(
        get_artifact.sync(shot.id, image.screenshot.name, client=client), File
    )
    data = download.payload.read()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:16]
    assert len(data) == image.screenshot.bytes_
    print("python scenario: ok")


if __name__ == "__main__":
    main()
