"""Encrypted gossip: a shared key, a wrong key kept out, and a key rotation with no downtime."""

import asyncio
import os

from swimguard import Agent, Config, JoinError, Keyring

OLD, NEW = os.urandom(32), os.urandom(32)  # what `swimguard keygen` prints, base64-decoded


async def main() -> None:
    config = Config.local()
    ring_a, ring_b = Keyring([OLD]), Keyring([OLD])  # each agent owns its keyring object
    async with Agent("a", bind="127.0.0.1:0", config=config, keyring=ring_a) as a, \
            Agent("b", bind="127.0.0.1:0", config=config, keyring=ring_b) as b, \
            Agent("x", bind="127.0.0.1:0", config=config, keyring=[os.urandom(32)]) as x:
        print("b joined:", await b.join([a.bound_address]))
        try:
            await x.join([a.bound_address], timeout=3.0)
        except JoinError as exc:
            print("wrong key:", type(exc).__name__)
        print("a dropped undecryptable input:", a.drops.get("decrypt", 0) > 0)

        # Rotation, as with `serf keys`: install everywhere, switch everywhere, then remove.
        for ring in (ring_a, ring_b):
            ring.add_key(NEW)
        for ring in (ring_a, ring_b):
            ring.use_key(NEW)
        for ring in (ring_a, ring_b):
            ring.remove_key(OLD)
        print("rejoin with the new key:", await b.join([a.bound_address]))


asyncio.run(main())
