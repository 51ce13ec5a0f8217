from authn.fixtures import node  # noqa: F401  (shared fixtures)
