//! Pages of every kind people extract content from, served on 127.0.0.1: an article, a
//! listing, a product, documentation, a forum thread, and the edge cases (no `main`,
//! content in tables, a page in windows-1252). Each comes with what its Markdown must hold
//! and must not.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One page, and what its main content is and is not.
pub struct Page {
    pub name: &'static str,
    pub must: &'static [&'static str],
    pub must_not: &'static [&'static str],
}

const NAV_AND_FOOTERS: &[&str] = &["Men](", "Women](", "©", "Latest](", "Terms"];

pub const PAGES: &[Page] = &[
    Page {
        name: "article",
        must: &[
            "# Harbour seals return to the estuary",
            "Volunteers counted fourteen pups",
            "> We thought it would take another decade",
            "- stay at least fifty metres from resting seals;",
            "/images/seal-pup.jpg)",
            "Counting continues through the winter",
        ],
        must_not: &[
            "cookies",
            "Sport",
            "Related stories",
            "Otters",
            "Newsletter",
            "Advertisement",
            "Sunny Cruises",
            "gullwatcher",
            "Comments",
            "All rights reserved",
            "Contact us",
        ],
    },
    Page {
        name: "listing",
        must: &[
            "# Hiking boots",
            "[Ridge Mid GTX](",
            "€149.00",
            "[Loch Sandal](",
            "€49.00",
            "[Crag Approach](",
        ],
        must_not: &[
            "Filter by",
            "Waterproof",
            "Search the shop",
            "subscribe",
            "Free delivery",
        ],
    },
    Page {
        name: "product",
        must: &[
            "# Ridge Mid GTX",
            "€149.00",
            "A waterproof mid boot",
            "| Weight | 560 g per boot |",
            "| Drop | 12 mm |",
            "Comfortable from the first walk.",
        ],
        must_not: &[
            "You may also like",
            "Scree Low",
            "Breadcrumb",
            "Home](",
            "Add to basket",
        ],
    },
    Page {
        name: "docs",
        must: &[
            "# Configuration",
            "```toml\n[server]\nport = 8080\nworkers = 4\n```",
            "| `port` | 8080 | Where the server listens |",
            "Send `SIGHUP` to reload",
        ],
        must_not: &["Installation](", "Deploying", "Edit this page", "Blog"],
    },
    Page {
        name: "forum",
        must: &[
            "# Best way to waterproof leather boots?",
            "hillwalker82",
            "Wax, every time.",
            "bogtrotter",
            "munro_bagger",
            "Waxed them last night, dry feet today.",
        ],
        must_not: &["Similar topics", "gaiters", "Post reply", "Powered by"],
    },
    Page {
        name: "no-main",
        must: &[
            "Notes on sourdough",
            "A starter is only flour and water",
            "then mix the dough.",
        ],
        must_not: &["Recipes](", "Popular posts", "Copyright"],
    },
    Page {
        name: "tables",
        must: &[
            "Season report",
            "| Player | Runs | Wickets |",
            "| P. Okafor | 188 | 41 |",
            "Nets resume in April",
        ],
        must_not: &["Fixtures](", "Contact]("],
    },
    Page {
        name: "latin1",
        must: &["# Café crème", "“Naïve” prices from €5"],
        must_not: &["Caf\u{fffd}", "Ã©"],
    },
];

/// What no page's Markdown may hold.
pub fn anywhere_not() -> &'static [&'static str] {
    NAV_AND_FOOTERS
}

/// The site: `/content/<name>` serves each page.
pub async fn start() -> String {
    let router = Router::new().route("/content/{name}", get(page));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind content site");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    base
}

async fn page(Path(name): Path<String>) -> Response {
    let html: &str = match name.as_str() {
        "article" => include_str!("content_pages/article.html"),
        "listing" => include_str!("content_pages/listing.html"),
        "product" => include_str!("content_pages/product.html"),
        "docs" => include_str!("content_pages/docs.html"),
        "forum" => include_str!("content_pages/forum.html"),
        "no-main" => include_str!("content_pages/no-main.html"),
        "tables" => include_str!("content_pages/tables.html"),
        // windows-1252, declared only in the header: é è ï “ ” €.
        "latin1" => {
            let body: &[u8] = b"<!doctype html><html><head><title>Caf\xe9</title></head><body>\
                <main><h1>Caf\xe9 cr\xe8me</h1><p>\x93Na\xefve\x94 prices from \x805 a cup, \
                served all day in the caf\xe9 by the harbour, with cakes baked each morning.</p></main></body></html>";
            return (
                [(header::CONTENT_TYPE, "text/html; charset=windows-1252")],
                body,
            )
                .into_response();
        }
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}
