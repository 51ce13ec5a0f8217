from authn.fixtures import node, pg_server, redis_server  # noqa: F401  (shared fixtures)
