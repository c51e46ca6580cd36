-- What jobs spent at each registrable domain, summed over every attempt, by route (`direct`, or
-- the proxy tier requests went through): requests, and the attempts and browser time (each
-- attempt's counted once, on its first route), so the ladder's choices can be judged against a
-- site's cheapest working rung. One upsert per attempt.
CREATE TABLE domain_spend (
    domain TEXT NOT NULL,
    route TEXT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    browser_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (domain, route)
);
