-- What an attempt at a host ran through besides its rung: the proxy tier its connections left
-- by (NULL: directly from the worker). `auto` learns each (rung, tier) step of its ladder apart.
ALTER TABLE domain_observations ADD COLUMN proxy_tier TEXT;
