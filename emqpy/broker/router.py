"""Topic routing: exact filters in a dict, wildcard filters in a trie, and a match cache.

A Route is one topic filter with its plain subscribers (by client id) and its shared-subscription
groups. `match(topic)` returns the routes whose filter matches; results are cached per topic and
the cache is dropped whenever the set of filters changes (not when subscribers of an existing
filter come and go, because routes are mutable and shared by reference).
"""
from __future__ import annotations


class Subscription:
    """One client's subscription to one filter, with its MQTT 5 options."""
    __slots__ = ("session", "topic_filter", "real_filter", "group", "qos", "no_local",
                 "retain_as_published", "retain_handling", "sub_id", "exclusive", "sub_ids")

    def __init__(self, session, topic_filter: str, real_filter: str, group: str | None,
                 qos: int, no_local: bool = False, retain_as_published: bool = False,
                 retain_handling: int = 0, sub_id: int | None = None, exclusive: bool = False):
        self.session = session
        self.topic_filter = topic_filter  # as the client wrote it ($share/... included)
        self.real_filter = real_filter
        self.group = group
        self.qos = qos
        self.no_local = no_local
        self.retain_as_published = retain_as_published
        self.retain_handling = retain_handling
        self.sub_id = sub_id
        self.sub_ids = (sub_id,) if sub_id else None  # what goes in each PUBLISH's properties
        self.exclusive = exclusive

    def options(self) -> dict:
        return {"qos": self.qos, "nl": int(self.no_local), "rap": int(self.retain_as_published),
                "rh": self.retain_handling}


class Route:
    __slots__ = ("filter", "subs", "groups")

    def __init__(self, flt: str):
        self.filter = flt
        self.subs: dict[str, Subscription] = {}
        self.groups: dict = {}  # group name -> SharedGroup

    def empty(self) -> bool:
        return not self.subs and not self.groups


class _Node:
    __slots__ = ("children", "route")

    def __init__(self):
        self.children: dict[str, _Node] = {}
        self.route: Route | None = None


class Router:
    CACHE_MAX = 65536

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self._exact: dict[str, Route] = {}
        self._root = _Node()
        # topic -> what match(topic) returns: hot paths read it before calling match
        self.cache: dict[str, tuple] = {}
        self._n_wild = 0
        self.n_dollar = 0  # filters starting with "$": only they can match $SYS topics

    def route_for(self, flt: str, create: bool = True) -> Route | None:
        route = self.routes.get(flt)
        if route is None and create:
            route = self.routes[flt] = Route(flt)
            if flt[:1] == "$":
                self.n_dollar += 1
            if "+" in flt or "#" in flt:
                node = self._root
                for level in flt.split("/"):
                    child = node.children.get(level)
                    if child is None:
                        child = node.children[level] = _Node()
                    node = child
                node.route = route
                self._n_wild += 1
            else:
                self._exact[flt] = route
            self.cache.clear()
        return route

    def drop_if_empty(self, route: Route) -> None:
        if not route.empty() or self.routes.get(route.filter) is not route:
            return
        flt = route.filter
        del self.routes[flt]
        if flt[:1] == "$":
            self.n_dollar -= 1
        self.cache.clear()
        if flt in self._exact:
            del self._exact[flt]
            return
        self._n_wild -= 1
        path = [self._root]
        levels = flt.split("/")
        for level in levels:
            path.append(path[-1].children[level])
        path[-1].route = None
        for i in range(len(levels), 0, -1):  # prune empty branches
            node = path[i]
            if node.route is None and not node.children:
                del path[i - 1].children[levels[i - 1]]
            else:
                break

    def match(self, topic: str) -> tuple:
        routes = self.cache.get(topic)
        if routes is not None:
            return routes
        exact = self._exact.get(topic)
        if self._n_wild:
            found = []
            if exact is not None:
                found.append(exact)
            levels = topic.split("/")
            self._walk(self._root, levels, 0, found, topic.startswith("$"))
            routes = tuple(found)
        else:
            routes = (exact,) if exact is not None else ()
        if len(self.cache) >= self.CACHE_MAX:
            self.cache.clear()
        self.cache[topic] = routes
        return routes

    def _walk(self, node: _Node, levels: list, i: int, found: list, dollar: bool) -> None:
        children = node.children
        hash_node = children.get("#")
        if hash_node is not None and hash_node.route is not None and not (dollar and i == 0):
            found.append(hash_node.route)  # '#' also matches the parent level itself
        if i == len(levels):
            return
        last = i + 1 == len(levels)
        child = children.get(levels[i])
        if child is not None:
            if last:
                if child.route is not None:  # only wildcard filters live in the trie
                    found.append(child.route)
                h = child.children.get("#")
                if h is not None and h.route is not None:
                    found.append(h.route)
            else:
                self._walk(child, levels, i + 1, found, dollar)
        if not (dollar and i == 0):
            plus = children.get("+")
            if plus is not None:
                if last:
                    if plus.route is not None:
                        found.append(plus.route)
                    h = plus.children.get("#")
                    if h is not None and h.route is not None:
                        found.append(h.route)
                else:
                    self._walk(plus, levels, i + 1, found, dollar)
