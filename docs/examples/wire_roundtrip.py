"""The wire codec alone: a compound, compressed, encrypted packet and a push/pull stream."""

import os

from swimguard.wire import Alive, Ping, PushNodeState, PushPullHeader
from swimguard.wire.encryption import Keyring
from swimguard.wire.packet import decode_packet, encode_message, encode_packet, make_compound
from swimguard.wire.stream import PushPull, StreamDecoder, encode_stream_message, frame_stream

keyring = Keyring([os.urandom(32)])  # 16/24/32-byte AES keys, primary first
msgs = [
    Ping(seq_no=1, node="b"),
    Alive(incarnation=3, node="a", addr=bytes([127, 0, 0, 1]), port=7946, vsn=bytes(6)),
]
packet = encode_packet(
    make_compound([encode_message(m) for m in msgs]),
    compress=True, crc=True, keyring=keyring, label=b"",
)
assert decode_packet(packet, keyring=keyring) == msgs  # a flat list of typed messages

push_pull = PushPull(
    header=PushPullHeader(nodes=1, user_state_len=0, join=True),
    states=(PushNodeState("a", bytes([127, 0, 0, 1]), 7946, 3, 0, meta=b"", vsn=bytes(6)),),
    user_state=b"",
)
stream = frame_stream(encode_stream_message(push_pull), compress=True, keyring=keyring)
decoder = StreamDecoder(keyring=keyring)
message = None
for i in range(0, len(stream), 10):  # bytes arrive in pieces; feed() says when it is whole
    message = decoder.feed(stream[i : i + 10])
assert message == push_pull
print(f"packet: {len(packet)} bytes, stream: {len(stream)} bytes, both decoded")
