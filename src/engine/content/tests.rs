//! What the content formats make of small pages: structure kept, markup of the right kind,
//! surroundings left out, and every hostile shape bounded.

use url::Url;

use super::*;

fn content_of(html: &str, formats: &[Format], only_main_content: bool) -> PageContent {
    content_with(html, formats, only_main_content, &[], &[])
}

fn content_with(
    html: &str,
    formats: &[Format],
    only_main_content: bool,
    include: &[String],
    exclude: &[String],
) -> PageContent {
    let formats = Formats::new(formats.iter().copied()).expect("formats");
    let url = Url::parse("https://shop.example/dir/page").expect("url");
    let request = ContentRequest {
        formats: &formats,
        only_main_content,
        include,
        exclude,
    };
    let origin = Origin {
        final_url: &url,
        status_code: 200,
    };
    of_html(html, origin, &request)
}

fn markdown(body: &str) -> String {
    let page = format!("<html><body>{body}</body></html>");
    let content = content_of(&page, &[Format::Markdown], false);
    content.markdown.expect("markdown")
}

#[test]
fn blocks_and_inline_markup_become_markdown() {
    let md = markdown(
        "<h2>Title <small>here</small></h2><p>Some <b>bold</b>, <em>emphasis</em> and \
         <code>a`b</code> with a <a href='/next?x=1'>relative link</a>.</p><hr>\
         <p>Line one<br>line two</p><p><img src='/i.png' alt='A [cat]'></p>",
    );
    assert_eq!(
        md,
        "## Title here\n\nSome **bold**, *emphasis* and ``a`b`` with a \
         [relative link](https://shop.example/next?x=1).\n\n---\n\nLine one\\\nline two\n\n\
         ![A \\[cat\\]](https://shop.example/i.png)"
    );
}

#[test]
fn lists_nest_under_their_items() {
    let md = markdown(
        "<ul><li>one<ul><li>one.a</li><li>one.b</li></ul></li><li>two</li></ul>\
         <ol start='3'><li><p>three</p><p>more</p></li><li>four</li></ol>",
    );
    assert_eq!(
        md,
        "- one\n  - one.a\n  - one.b\n- two\n\n3. three\n\n   more\n\n4. four"
    );
}

#[test]
fn code_blocks_keep_their_text_and_language() {
    let md = markdown(
        "<pre><code class='language-rust'>fn main() {\n    let x = \"```\";\n}</code></pre>",
    );
    assert_eq!(md, "````rust\nfn main() {\n    let x = \"```\";\n}\n````");
}

#[test]
fn quotes_and_text_that_looks_like_syntax() {
    let md = markdown(
        "<blockquote><p># not a heading</p><p>1. not a list</p></blockquote><p>*stars* and snake_case</p>",
    );
    assert_eq!(
        md,
        "> \\# not a heading\n>\n> 1\\. not a list\n\n\\*stars\\* and snake_case"
    );
}

#[test]
fn a_data_table_keeps_every_cell_row_headers_included() {
    let md = markdown(
        "<table><caption>Films</caption><thead><tr><th>Film</th><th>Year</th></tr></thead>\
         <tbody><tr><th><i>Repeat Performance</i></th><td>1947</td></tr>\
         <tr><th>A|B</th><td rowspan='2'>1964</td></tr><tr><th>Later</th></tr></tbody></table>",
    );
    assert_eq!(
        md,
        "Films\n\n| Film | Year |\n| --- | --- |\n| *Repeat Performance* | 1947 |\n| A\\|B | 1964 |\n| Later |  |"
    );
}

#[test]
fn a_layout_table_reads_as_its_blocks() {
    let md = markdown(
        "<table><tr><td><h1>Headline</h1><p>First paragraph.</p></td></tr>\
         <tr><td><p>Second paragraph.</p></td></tr></table>",
    );
    assert_eq!(md, "# Headline\n\nFirst paragraph.\n\nSecond paragraph.");
}

#[test]
fn text_has_the_blocks_without_the_markup() {
    let page = "<body><h1>Head</h1><p>A <a href='/x'>link</a> and <b>bold</b>.</p>\
                <ul><li>one</li><li>two</li></ul><table><tr><td>a</td><td>b</td></tr></table></body>";
    let content = content_of(page, &[Format::Text], false);
    assert_eq!(
        content.text.as_deref(),
        Some("Head\n\nA link and bold.\n\n- one\n- two\n\na\tb")
    );
}

#[test]
fn cleaned_html_has_absolute_urls_real_images_and_no_scripts() {
    let page = "<body><p class='x' onclick='evil()' style='color:red'>Hi \
                <a href='javascript:alert(1)'>js</a> <a href='../up'>up</a>\
                <img src='data:image/gif;base64,R0lGOD' data-src='/real.jpg' alt='real'></p>\
                <script>alert(1)</script><div hidden>secret</div>\
                <p style='display: none'>gone</p></body>";
    let content = content_of(page, &[Format::Html, Format::Markdown], false);
    let html = content.html.expect("html");
    assert!(
        html.contains(r#"<a href="https://shop.example/up">up</a>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<img src="https://shop.example/real.jpg" alt="real">"#),
        "{html}"
    );
    for gone in [
        "script",
        "alert",
        "onclick",
        "style",
        "class",
        "secret",
        "gone",
        "javascript",
    ] {
        assert!(!html.contains(gone), "{gone} in {html}");
    }
    assert_eq!(
        content.markdown.as_deref(),
        Some("Hi js [up](https://shop.example/up)![real](https://shop.example/real.jpg)")
    );
}

#[test]
fn include_and_exclude_selectors_choose_the_content() {
    let page = "<body><div class='intro'>Intro</div><div class='item'>One <span class='ad'>Buy</span></div>\
                <div class='item'>Two<div class='item'>Nested</div></div></body>";
    let include = vec![".item".to_owned()];
    let exclude = vec![".ad".to_owned()];
    let content = content_with(page, &[Format::Markdown], true, &include, &exclude);
    assert_eq!(content.markdown.as_deref(), Some("One\n\nTwo\n\nNested"));
    assert_eq!(content.content_source, Some(ContentSource::Selectors));
}

#[test]
fn links_are_absolute_unique_named_and_marked_internal() {
    let page = "<head><base href='https://shop.example/base/'></head><body>\
                <a href='a#top'><img alt='Logo'></a><a href='a'>Again</a>\
                <a href='https://www.shop.example/b'>B</a><a href='https://other.example/'>Out</a>\
                <a href='mailto:x@y'>mail</a></body>";
    let content = content_of(page, &[Format::Links], true);
    let links = content.links.expect("links");
    let seen: Vec<(&str, &str, bool)> = links
        .iter()
        .map(|l| (l.url.as_str(), l.text.as_str(), l.internal))
        .collect();
    assert_eq!(
        seen,
        [
            ("https://shop.example/base/a", "Logo", true),
            ("https://www.shop.example/b", "B", true),
            ("https://other.example/", "Out", false),
        ]
    );
}

#[test]
fn metadata_reads_meta_tags_and_json_ld() {
    let page = r#"<html lang="fr"><head><title> Le  titre </title>
        <meta name="description" content="Desc">
        <link rel="canonical" href="/canon">
        <meta property="og:title" content="OG title"><meta property="og:image" content="https://shop.example/i.png">
        <meta name="twitter:card" content="summary">
        <meta property="article:published_time" content="2026-01-02T03:04:05Z">
        <script type="application/ld+json">{"@graph":[{"@type":"Article","author":[{"name":"Ada"},{"name":"Grace"}],"dateModified":"2026-02-03"}]}</script>
        </head><body><p>x</p></body></html>"#;
    let content = content_of(page, &[Format::Metadata], true);
    let meta = content.metadata.expect("metadata");
    assert_eq!(meta.title.as_deref(), Some("Le titre"));
    assert_eq!(meta.description.as_deref(), Some("Desc"));
    assert_eq!(
        meta.canonical_url.as_deref(),
        Some("https://shop.example/canon")
    );
    assert_eq!(meta.language.as_deref(), Some("fr"));
    assert_eq!(meta.author.as_deref(), Some("Ada, Grace"));
    assert_eq!(meta.published_time.as_deref(), Some("2026-01-02T03:04:05Z"));
    assert_eq!(meta.modified_time.as_deref(), Some("2026-02-03"));
    assert_eq!(meta.open_graph["title"], "OG title");
    assert_eq!(meta.twitter["card"], "summary");
    assert_eq!(meta.status_code, 200);
    assert_eq!(meta.final_url, "https://shop.example/dir/page");
}

/// Runs `work` on a thread with the stack a blocking task gets (2 MiB).
fn on_a_blocking_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(work)
        .expect("thread")
        .join()
        .expect("no panic, no overflow")
}

#[test]
fn a_deeply_nested_page_is_read_without_readability_or_recursion() {
    let content = on_a_blocking_thread(|| {
        // Deeper than Readability runs and than the renderer recurses; within what a page
        // may cost to parse (the kind refuses deeper ones, `parse_cost`).
        let depth = 2_000;
        let page = format!(
            "<body>{}<p>deep words here</p>{}</body>",
            "<div><blockquote><ul><li>".repeat(depth / 4),
            "</li></ul></blockquote></div>".repeat(depth / 4)
        );
        content_of(&page, &[Format::Markdown, Format::Text], true)
    });
    assert_eq!(content.content_source, Some(ContentSource::Page));
    assert!(
        content
            .markdown
            .expect("markdown")
            .contains("deep words here")
    );
    assert!(content.text.expect("text").contains("deep words here"));
}

#[test]
fn huge_tables_and_pages_are_cut_and_say_so() {
    let content = on_a_blocking_thread(|| {
        let rows: String = (0..6_000)
            .map(|i| format!("<tr><td>{i}</td><td>x</td></tr>"))
            .collect();
        let page = format!("<body><table>{rows}</table></body>");
        content_of(&page, &[Format::Markdown], false)
    });
    assert_eq!(content.truncated, [Format::Markdown]);
    let md = content.markdown.expect("markdown");
    assert!(md.contains("| 4999 | x |") && !md.contains("| 5000 |"));

    let content = on_a_blocking_thread(|| {
        let page = format!(
            "<body>{}</body>",
            "<p>words words words words</p>".repeat(120_000)
        );
        content_of(&page, &[Format::Markdown, Format::Html], false)
    });
    assert_eq!(content.truncated, [Format::Markdown, Format::Html]);
    assert!(content.markdown.expect("markdown").len() <= MAX_CONTENT_BYTES);
    assert!(content.html.expect("html").len() <= MAX_CONTENT_BYTES);
}

#[test]
fn a_declared_product_keeps_its_price_and_specs_not_only_its_longest_review() {
    let review = "I wore this jacket across the plateau in a January gale and it kept every \
                  drop of rain and sleet out, even when the wind drove the sleet sideways. "
        .repeat(4);
    let page = format!(
        r#"<html><head><title>Stormproof Jacket – Shop</title>
        <script type="application/ld+json">{{"@context":"https://schema.org","@type":"Product","name":"Stormproof Jacket"}}</script>
        </head><body><div class="top"><a href="/">Home</a> <a href="/jackets">Jackets</a></div>
        <div class="info"><h1>Stormproof Jacket</h1><span class="price">€249</span>
        <table><tr><th>Sizes</th><td>S–XXL</td></tr><tr><th>Colours</th><td>Red, Navy</td></tr></table></div>
        <div id="reviews"><h2>Reviews</h2><div class="review"><p>{review}</p></div></div>
        <div class="bottom">© 2026 Shop Ltd</div></body></html>"#
    );
    let content = content_of(&page, &[Format::Markdown], true);
    assert_eq!(content.content_source, Some(ContentSource::Page));
    let md = content.markdown.expect("markdown");
    for must in [
        "# Stormproof Jacket",
        "€249",
        "| Colours | Red, Navy |",
        "January gale",
    ] {
        assert!(md.contains(must), "{must:?} missing from\n{md}");
    }
    for not in ["Home](", "Jackets](", "©"] {
        assert!(!md.contains(not), "{not:?} in\n{md}");
    }
}
