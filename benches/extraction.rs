//! Main-content extraction and Markdown on real pages: the 91 pages of Mozilla
//! Readability's test suite in `../shared/corpus/readability/` (override with `CORPUS`),
//! each with the content people expect from it (`expected.html`).
//!
//! Run: `cargo bench --bench extraction`.
//!
//! - Quality: word-level precision, recall and F1 of the text of the Markdown
//!   `navigate_extract` returns (`formats: ["markdown"]`, read back by a CommonMark parser,
//!   so link targets, syntax and images' alt text do not count) against the text of
//!   `expected.html`: the mean over the corpus, and the worst 5 pages.
//! - Speed on one core, in MB of source HTML per second: the whole `markdown` format
//!   (parse, Readability, the fallback's stripped page, cleaning, rendering), beside two
//!   baselines from the same run: parsing alone (the floor any extractor pays) and
//!   `dom_smoothie` alone (Readability with its own text output).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use control_plane::engine::content::{self, ContentRequest, Format, Formats, Origin};
use control_plane::engine::parse_cost;
use pulldown_cmark::{Event, Parser, Tag, TagEnd};
use url::Url;

/// Readability's tests read every page as if from this url.
const PAGE_URL: &str = "http://fakehost/test/page.html";

struct Page {
    name: String,
    source: String,
    expected: String,
}

fn main() {
    let pages = corpus();
    let bytes: usize = pages.iter().map(|p| p.source.len()).sum();
    println!(
        "extraction: {} pages, {:.1} MB of HTML",
        pages.len(),
        bytes as f64 / 1e6
    );
    let work = pages
        .iter()
        .map(|p| parse_cost::parse_work(&p.source))
        .max()
        .unwrap_or(0);
    println!(
        "parse work: at most {work} on these pages (a page over {} is refused)",
        parse_cost::MAX_PARSE_WORK
    );
    quality(&pages);
    speed(&pages, bytes);
}

fn corpus() -> Vec<Page> {
    let dir = std::env::var_os("CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/readability")
        });
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("expected.html").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let read = |file: &str| {
                let raw = std::fs::read(dir.join(&name).join(file)).expect("page file");
                String::from_utf8_lossy(&raw).into_owned()
            };
            Page {
                source: read("source.html"),
                expected: read("expected.html"),
                name,
            }
        })
        .collect()
}

fn markdown_of(source: &str) -> content::PageContent {
    let formats = Formats::new([Format::Markdown]).expect("a format");
    let url = Url::parse(PAGE_URL).expect("url");
    let request = ContentRequest {
        formats: &formats,
        only_main_content: true,
        include: &[],
        exclude: &[],
    };
    content::of_html(
        source,
        Origin {
            final_url: &url,
            status_code: 200,
        },
        &request,
    )
}

fn quality(pages: &[Page]) {
    let mut rows = Vec::new();
    for page in pages {
        let got = markdown_of(&page.source);
        let markdown = got.markdown.unwrap_or_default();
        let (p, r, f) = scores(
            &words(&markdown_text(&markdown)),
            &words(&html_text(&page.expected)),
        );
        rows.push((f, p, r, page.name.clone(), got.content_source));
    }
    let n = rows.len() as f64;
    let mean = |i: usize| rows.iter().map(|r| [r.1, r.2, r.0][i]).sum::<f64>() / n;
    println!(
        "quality: precision {:.3}, recall {:.3}, F1 {:.3} (mean over {} pages)",
        mean(0),
        mean(1),
        mean(2),
        rows.len()
    );
    let from_page = rows
        .iter()
        .filter(|r| r.4 == Some(content::ContentSource::Page))
        .map(|r| r.3.as_str())
        .collect::<Vec<_>>();
    println!("  content from the stripped page, not Readability: {from_page:?}");
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("  worst 5:");
    for (f, p, r, name, source) in rows.iter().take(5) {
        println!("    F1 {f:.3} (precision {p:.3}, recall {r:.3}) {name} [{source:?}]");
    }
    let below = rows.iter().filter(|r| r.0 < 0.5).count();
    println!("  pages below F1 0.5: {below}");
}

fn speed(pages: &[Page], bytes: usize) {
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let timed = |run: &dyn Fn(&str)| {
        // One warm-up round, then the best of `rounds` (the machine is shared).
        let mut best = f64::MAX;
        for round in 0..=rounds {
            let started = Instant::now();
            for page in pages {
                run(&page.source);
            }
            if round > 0 {
                best = best.min(started.elapsed().as_secs_f64());
            }
        }
        bytes as f64 / 1e6 / best
    };
    let parse = timed(&|source| {
        std::hint::black_box(dom_query::Document::from(source));
    });
    let readability = timed(&|source| {
        let article = dom_smoothie::Readability::new(source, Some(PAGE_URL), None)
            .and_then(|mut r| r.parse());
        std::hint::black_box(article.ok());
    });
    let ours = timed(&|source| {
        std::hint::black_box(markdown_of(source));
    });
    println!("speed on one core (best of {rounds} rounds):");
    println!("  parse only (baseline)        {parse:6.1} MB/s");
    println!("  dom_smoothie alone           {readability:6.1} MB/s");
    println!(
        "  navigate_extract markdown    {ours:6.1} MB/s = {:.2}× parsing, {:.2}× dom_smoothie",
        ours / parse,
        ours / readability
    );
}

/// The text a reader of the Markdown sees.
fn markdown_text(markdown: &str) -> String {
    let mut text = String::new();
    // An image's alt text stands in for the image; it is not text of the page (nor is it
    // in `expected.html`'s text).
    let mut in_image = 0usize;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Image { .. }) => in_image += 1,
            Event::End(TagEnd::Image) => in_image = in_image.saturating_sub(1),
            Event::Text(t) | Event::Code(t) if in_image == 0 => text.push_str(&t),
            _ => {}
        }
        text.push(' ');
    }
    text
}

fn html_text(html: &str) -> String {
    let fragment = scraper::Html::parse_fragment(html);
    fragment.root_element().text().collect::<Vec<_>>().join(" ")
}

fn words(text: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    counts
}

/// Precision, recall and F1 of `got` against `want`, as bags of words.
fn scores(got: &HashMap<String, usize>, want: &HashMap<String, usize>) -> (f64, f64, f64) {
    let overlap: usize = got
        .iter()
        .map(|(w, n)| (*n).min(want.get(w).copied().unwrap_or(0)))
        .sum();
    let (g, e): (usize, usize) = (got.values().sum(), want.values().sum());
    let precision = if g == 0 {
        0.0
    } else {
        overlap as f64 / g as f64
    };
    let recall = if e == 0 {
        1.0
    } else {
        overlap as f64 / e as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    (precision, recall, f1)
}
