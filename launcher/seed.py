"""The demo's data: accounts, a transfer group with a welcome message, sensitive words, and a bot account per bot.

Created once: a demo started again on the same database finds them and changes nothing.
"""

from __future__ import annotations

import asyncpg

from imserver import auth
from imserver.model import MemberRole, Role
from imserver.moderation import link_family_txn
from imserver.store import accounts, conversations, moderation
from imserver.store.messages import Draft, write_batch
from pgtrio.bridge import Store
from protocol.frames import Sender

DEMO_PASSWORD = "demo1234"
"""Every demo account's password, the bots' included."""
USERS = [
    ("admin", "系统管理员", Role.ADMIN, ""),
    ("dr_wang", "王医生", Role.STAFF, "主任医师"),
    ("nurse_li", "李护士", Role.STAFF, "护士长"),
    ("chen_hong", "陈红", Role.PATIENT, ""),
    ("zhao_min", "赵敏", Role.PATIENT, ""),
    ("liu_fang", "刘芳", Role.PATIENT, ""),
    ("chen_family", "陈红的丈夫", Role.FAMILY, ""),
]
WORDS = [("代孕", "block"), ("卖卵", "block"), ("微信", "mask"), ("QQ", "flag")]
GROUP = "试管婴儿·移植群"
WELCOME = "欢迎加入移植群！移植前后有任何疑问，都可以在群里提问，医生和护士会及时回复。"


async def seed(store: Store) -> int:
    """Create the demo accounts and group once; return the group's id."""
    existing = await accounts.user_by_name(store, USERS[0][0])
    if existing is None:
        password_hash = await auth.hash_password(DEMO_PASSWORD)
        for username, name, role, title in USERS:
            await accounts.create_user(store, username, name, role, password_hash, title=title)
    ids = {u: (await accounts.user_by_name(store, u)) for u, _, _, _ in USERS}

    async def txn(db: asyncpg.Connection) -> int:
        found = await db.fetchval("select id from conversations where kind = 'group' and name = $1", GROUP)
        if found:
            return int(found)
        doctor, wife, husband = ids["dr_wang"], ids["chen_hong"], ids["chen_family"]
        assert doctor is not None and wife is not None and husband is not None
        await link_family_txn(db, wife.id, husband.id, "husband")  # he follows her into her groups (IM-8)
        for word, policy in WORDS:
            await moderation.set_word_txn(db, word, policy, None)
        patients = [u.id for u in ids.values() if u and u.role is Role.PATIENT]
        conv_id = await conversations.create_group_txn(db, GROUP, doctor.id, patients)
        nurse = ids["nurse_li"]
        assert nurse is not None
        await conversations.set_members_txn(db, conv_id, [(nurse.id, MemberRole.ADMIN)])
        sender = Sender(doctor.ref, doctor.display_name, str(doctor.role))
        await write_batch(db, [Draft(conv_id, doctor.id, sender, "text", WELCOME, None, "demo-welcome")])
        return conv_id
    return await store.run("seed", txn)


async def seed_bots(store: Store, names: list[str], group_id: int) -> None:
    """A bot account per bot (its name, the demo password), each an admin of the demo group."""
    password_hash = await auth.hash_password(DEMO_PASSWORD)
    for name in names:
        bot = await accounts.user_by_name(store, name)
        if bot is None:
            bot = await accounts.create_user(store, name, f"{name} 机器人", Role.BOT, password_hash)
        await store.run("seed_bot", conversations.set_members_txn, group_id, [(bot.id, MemberRole.ADMIN)])
