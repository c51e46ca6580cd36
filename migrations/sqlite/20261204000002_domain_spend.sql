-- What jobs spent at each registrable domain, summed over every attempt: attempts and browser
-- time, and requests by route (`direct`, or the proxy tier they went through), so the ladder's
-- choices can be judged against a site's cheapest working rung.
CREATE TABLE domain_spend (
    domain TEXT PRIMARY KEY,
    attempts BIGINT NOT NULL DEFAULT 0,
    browser_ms BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE domain_route_spend (
    domain TEXT NOT NULL,
    route TEXT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (domain, route)
);
