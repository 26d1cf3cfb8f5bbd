"""The demo's data: accounts, a transfer group with a welcome message, sensitive words, and a bot account per bot.

Created once: a demo started again on the same database finds them and changes nothing.
"""

from __future__ import annotations

from imserver.actions.accounts import do_create_user, do_link_family
from imserver.actions.base import Actor, Context
from imserver.actions.conversations import do_add_member, do_create_group
from imserver.actions.words import do_set_word
from imserver.model import MemberRole, Role, User
from imserver.store import accounts, conversations
from imserver.store.messages import Draft, write_batch
from imserver.words import Policy
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
PHONES = {"chen_hong": "13800138000", "zhao_min": "13800138001", "liu_fang": "13800138002",
          "chen_family": "13800138003"}
"""The demo patients' and husband's phone numbers (stored encrypted), as staff see them in 查看真实身份."""
WORDS = [("代孕", "block"), ("卖卵", "block"), ("微信", "mask"), ("QQ", "flag")]
GROUP = "试管婴儿·移植群"
WELCOME = "欢迎加入移植群！移植前后有任何疑问，都可以在群里提问，医生和护士会及时回复。"


async def seed(store: Store) -> int:
    """Create the demo accounts and group once, as an operator would; return the group's id."""
    ctx, operator = Context(store), Actor.operator()
    if await accounts.user_by_name(store, USERS[0][0]) is None:
        for username, name, role, title in USERS:
            await do_create_user(ctx, operator, username, name, role, DEMO_PASSWORD, title=title,
                                 phone=PHONES.get(username))
    found = await conversations.group_by_name(store, GROUP)
    if found is not None:
        return found
    users: dict[str, User] = {}
    for username, _, _, _ in USERS:
        user = await accounts.user_by_name(store, username)
        assert user is not None
        users[username] = user
    doctor, wife, husband = users["dr_wang"], users["chen_hong"], users["chen_family"]
    await do_link_family(ctx, operator, wife, husband, "husband")  # he follows her into her groups (IM-8)
    for word, policy in WORDS:
        await do_set_word(ctx, operator, word, Policy(policy))
    patients = [u.id for u in users.values() if u.role is Role.PATIENT]
    conv_id = await do_create_group(ctx, operator, GROUP, doctor.id, patients)
    await do_add_member(ctx, operator, conv_id, users["nurse_li"].id, MemberRole.ADMIN)
    sender = Sender(doctor.ref, doctor.display_name, str(doctor.role))
    await store.run("seed", write_batch, [Draft(conv_id, doctor.id, sender, "text", WELCOME, None, "demo-welcome")])
    return conv_id


async def seed_bots(store: Store, names: list[str], group_id: int) -> None:
    """A bot account per bot (its name, the demo password), each an admin of the demo group."""
    ctx, operator = Context(store), Actor.operator()
    for name in names:
        bot = await accounts.user_by_name(store, name)
        if bot is None:
            bot = await do_create_user(ctx, operator, name, f"{name} 机器人", Role.BOT, DEMO_PASSWORD)
        await do_add_member(ctx, operator, group_id, bot.id, MemberRole.ADMIN)
