"""The accounts' loaders: users and their wallets' balances."""

from __future__ import annotations

from api.core.dataloader import LoaderBase, by_field, lazy_loader
from db import models
from markets.ledger import balances_of_users


class AccountLoaders(LoaderBase):
    """Loaders of accounts; part of each request's ``api.loaders.Loaders``."""

    async def _balances(self, keys: list[int]) -> list[int | None]:
        found = await balances_of_users(list(set(keys)))
        return [found.get(key) for key in keys]

    # One loader per relation, made on its first use in a request.
    user_by_id = lazy_loader(by_field(models.User, "id"))
    user_by_username = lazy_loader(by_field(models.User, "username"))
    balance_by_user = lazy_loader(_balances, method=True)
