"""The set of pools a process serves: policy name -> PrefillRouter, built once at startup.

Pools that share a checkpoint share its encoder (loaded once per process), so serving every
config in configs/ costs one model load.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from router.errors import ConfigError, UnknownModelError
from router.routing.pool import DEFAULT_CONFIG, Slot, list_configs, load_pool
from router.routing.router import PrefillRouter


class RouterRegistry:
    def __init__(self, routers: Iterable[PrefillRouter], default: str | None = None):
        self._routers: dict[str, PrefillRouter] = {}
        for r in routers:
            if r.pool.policy in self._routers:
                raise ConfigError(r.pool.source_path or "<config>",
                                  [f"policy: {r.pool.policy!r} is already used by {self._routers[r.pool.policy].pool.source_path}"])
            self._routers[r.pool.policy] = r
        if not self._routers:
            raise ConfigError("<configs>", ["no pool configs to serve"])
        self.default = default if default in self._routers else next(iter(self._routers))

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path] | None = None, default_path: str | Path | None = None,
                   ) -> RouterRegistry:
        """Load the given configs (default: every YAML in configs/); the first path is the default pool."""
        paths = [Path(p) for p in (paths or [])] or list_configs()
        default_path = Path(default_path) if default_path else (DEFAULT_CONFIG if DEFAULT_CONFIG in paths else paths[0])
        ordered = [default_path] + [p for p in paths if p.resolve() != default_path.resolve()]
        routers = [PrefillRouter(load_pool(p)) for p in ordered]
        return cls(routers, default=routers[0].pool.policy)

    def warm(self) -> RouterRegistry:
        """Warm every router (PrefillRouter.warm): for servers, before their first request."""
        for r in self._routers.values():
            r.warm()
        return self

    @property
    def policies(self) -> list[str]:
        return list(self._routers)

    def get(self, policy: str | None = None) -> PrefillRouter:
        if policy is None:
            return self._routers[self.default]
        try:
            return self._routers[policy]
        except KeyError:
            raise UnknownModelError(f"unknown policy {policy!r}; known policies: {', '.join(self._routers)}") from None

    def __iter__(self):
        return iter(self._routers.values())

    def resolve(self, model: str | None) -> tuple[PrefillRouter, Slot | None]:
        """A client's `model`: a policy name routes; a slot name (of the default pool first) pins."""
        if model is None or model in self._routers:
            return self.get(model), None
        for r in [self.get()] + [r for r in self if r is not self.get()]:
            if model in r.pool.names:
                return r, r.pool.slot(model)
        names = sorted({n for r in self for n in r.pool.names})
        raise UnknownModelError(
            f"unknown model {model!r}: send a policy name ({', '.join(self._routers)}) to route, "
            f"or a slot name to pin ({', '.join(names)})")
