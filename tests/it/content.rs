//! `navigate_extract`'s formats through the API and real workers: the Markdown of each
//! kind of page holds its content and none of its surroundings, is the same whether the
//! `http` engine or Chromium loaded the page, and comes with links and metadata; bad
//! format fields are refused, naming the field.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Options, TestApp};
use crate::content_site::{PAGES, anywhere_not, start};

const LONG: Duration = Duration::from_secs(120);

fn job(url: &str, strategy: &str) -> Value {
    json!({
        "url": url,
        "strategy": strategy,
        "payload": {"formats": ["markdown", "links", "metadata"]},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_page_gives_its_content_the_same_from_both_engines() {
    let site = start().await;
    let app = TestApp::spawn_with(Options {
        browser: true,
        concurrency: 2,
        ..Options::default()
    })
    .await;
    let mut submitted = Vec::new();
    for page in PAGES {
        let url = format!("{site}/content/{}", page.name);
        for strategy in ["http", "vanilla"] {
            let created = app.submit(&job(&url, strategy)).await;
            let id = created["id"].as_str().expect("id").to_owned();
            submitted.push((page, strategy, id));
        }
    }
    let mut markdown_by_page = std::collections::HashMap::new();
    for (page, strategy, id) in &submitted {
        let done = app.wait_terminal(id, LONG).await;
        assert_eq!(
            done["state"], "succeeded",
            "{} over {strategy}: {done}",
            page.name
        );
        let result = &done["result"];
        assert_eq!(result["executed_with"], *strategy);
        // Without `formats` the result's own fields were there; with them, only `content`.
        assert!(
            result.get("text").is_none() && result.get("title").is_none(),
            "{result}"
        );
        let content = &result["content"];
        let markdown = content["markdown"].as_str().expect("markdown").to_owned();
        for must in page.must {
            assert!(
                markdown.contains(must),
                "{} over {strategy}: {must:?} missing from\n{markdown}",
                page.name
            );
        }
        for not in page.must_not.iter().chain(anywhere_not()) {
            assert!(
                !markdown.contains(not),
                "{} over {strategy}: {not:?} in\n{markdown}",
                page.name
            );
        }
        assert_eq!(content["metadata"]["status_code"], 200);
        assert!(
            content["links"]
                .as_array()
                .is_some_and(|l| !l.is_empty() || page.name == "latin1")
        );
        if let Some(other) = markdown_by_page.insert(page.name, markdown.clone()) {
            assert_eq!(other, markdown, "{}: http and vanilla differ", page.name);
        }
    }

    // Links and metadata of the article, as a client reads them.
    let (_, _, id) = &submitted[0];
    let article = app.job(id).await;
    let content = &article["result"]["content"];
    assert_eq!(content["content_source"], "article");
    let meta = &content["metadata"];
    assert_eq!(
        meta["title"],
        "Harbour seals return to the estuary | The Coastal Times"
    );
    assert_eq!(meta["author"], "Maren Holt");
    assert_eq!(meta["language"], "en");
    assert_eq!(meta["published_time"], "2026-11-30T08:00:00Z");
    assert_eq!(meta["open_graph"]["type"], "article");
    assert_eq!(meta["canonical_url"], format!("{site}/news/seals"));
    let links = content["links"].as_array().expect("links");
    let otters = links
        .iter()
        .find(|l| l["url"] == format!("{site}/news/otters"))
        .expect("the related story's link is listed (links are the whole page's)");
    assert_eq!(otters["text"], "Otters spotted upstream");
    assert_eq!(otters["internal"], true);
    app.stop().await;
}

#[tokio::test]
async fn bad_format_fields_are_refused_naming_them() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"formats": ["markdown", "pdf"]}), "payload.formats.1"),
        (json!({"formats": []}), "payload.formats"),
        (json!({"formats": "markdown"}), "payload.formats"),
        (
            json!({"formats": ["links"], "only_main_content": false}),
            "payload.only_main_content",
        ),
        (
            json!({"include_selectors": ["main"]}),
            "payload.include_selectors",
        ),
        (
            json!({"formats": ["markdown"], "exclude_selectors": ["a[", "nav"]}),
            "payload.exclude_selectors.0",
        ),
        (
            json!({"formats": ["text"], "include_selectors": vec!["x"; 51]}),
            "payload.include_selectors",
        ),
        (
            json!({"formats": ["html"], "only_main_content": "yes"}),
            "payload.only_main_content",
        ),
    ];
    for (payload, field) in cases {
        let body = json!({"url": "https://example.com/", "strategy": "http", "payload": payload});
        let response = app.post_json("/api/v1/jobs", &body).await;
        assert_eq!(response.status(), 422, "{payload}");
        let problem: Value = response.json().await.expect("problem");
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{payload}: {problem}");
    }
    assert_eq!(app.job_rows().await, 0, "nothing half-stored");
    app.stop().await;
}
