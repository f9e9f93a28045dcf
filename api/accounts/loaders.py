"""The accounts' loaders: users and their wallets' balances."""

from __future__ import annotations

from api.core.dataloader import LoaderBase, by_field
from db import models
from markets.ledger import balances_of_users


class AccountLoaders(LoaderBase):
    """Loaders of accounts; part of each request's ``api.loaders.Loaders``."""

    def __init__(self, max_objects: int | None = None) -> None:
        super().__init__(max_objects)
        self.user_by_id = self._loader(by_field(models.User, "id"))
        self.balance_by_user = self._loader(self._balances)

    async def _balances(self, keys: list[int]) -> list[int | None]:
        found = await balances_of_users(list(set(keys)))
        return [found.get(key) for key in keys]
