"""Serf's JSON agent configuration: key names, merging, and errors naming file and key."""

from __future__ import annotations

import json
import pathlib

import pytest

from swimguard.agent_config_file import ConfigFileError, load_config_files, parse_go_duration


def _write(path: pathlib.Path, data: object) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_serf_keys_become_flag_defaults(tmp_path: pathlib.Path) -> None:
    conf = _write(tmp_path / "a.json", {
        "node_name": "n1", "bind": "127.0.0.1:0", "advertise": "10.0.0.1", "encrypt_key": "k",
        "tags": {"role": "web", "dc": "x"}, "event_handlers": ["user=h.sh"],
        "rpc_addr": "", "rpc_auth": "t", "log_level": "warn", "snapshot_path": "/s",
        "rejoin_after_leave": True, "retry_join": ["h:1"], "retry_interval": "1m30s",
        "retry_max_attempts": 3, "keyring_file": "/k", "start_join": ["h:2"], "profile": "wan",
    })
    assert load_config_files([conf]) == {
        "name": "n1", "bind": "127.0.0.1:0", "advertise": "10.0.0.1", "encrypt": "k",
        "tag": ["role=web", "dc=x"], "event_handler": ["user=h.sh"], "rpc_addr": "",
        "rpc_auth": "t", "log_level": "WARNING", "snapshot": "/s", "rejoin": True,
        "retry_join": ["h:1"], "retry_interval": 90.0, "retry_max": 3, "keyring_file": "/k",
        "join": ["h:2"], "profile": "wan",
    }


def test_later_files_win_lists_append_tags_merge(tmp_path: pathlib.Path) -> None:
    d = tmp_path / "conf.d"
    d.mkdir()
    first = _write(tmp_path / "first.json", {"node_name": "a", "tags": {"role": "web", "x": "1"},
                                            "event_handlers": ["one"]})
    _write(d / "20-b.json", {"node_name": "c", "event_handlers": ["three"]})
    _write(d / "10-a.json", {"node_name": "b", "tags": {"x": "2"}, "event_handlers": ["two"]})
    (d / "notes.txt").write_text("not json, not read")
    got = load_config_files([first], [str(d)])
    assert got["name"] == "c"
    assert got["event_handler"] == ["one", "two", "three"]
    assert got["tag"] == ["role=web", "x=2"]


@pytest.mark.parametrize(("data", "message"), [
    ({"node_name": "a", "bogus": 1}, "unknown key 'bogus'"),
    ({"rejoin_after_leave": "yes"}, "rejoin_after_leave: expected true or false"),
    ({"retry_interval": 30}, "retry_interval: expected a duration string"),
    ({"retry_interval": "30 s"}, "retry_interval: '30 s' is not a duration"),
    ({"retry_max_attempts": -1}, "retry_max_attempts: expected a whole number >= 0"),
    ({"log_level": "loud"}, "log_level: expected one of"),
    ({"tags": {"a=b": "c"}}, "tag name 'a=b'"),
    ({"tags": {"a": 1}}, "tags: expected an object of strings"),
    ({"event_handlers": "h.sh"}, "event_handlers: expected a list of strings"),
    (["node_name"], "expected a JSON object"),
])
def test_errors_name_the_file_and_the_key(
    tmp_path: pathlib.Path, data: object, message: str
) -> None:
    path = _write(tmp_path / "bad.json", data)
    with pytest.raises(ConfigFileError, match=r"^" + str(path).replace(".", r"\.")) as info:
        load_config_files([path])
    assert message in str(info.value)


def test_unreadable_and_broken_files(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigFileError, match=r"missing\.json: cannot read"):
        load_config_files([str(tmp_path / "missing.json")])
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"node_name": \xff')
    with pytest.raises(ConfigFileError, match=r"broken\.json: not valid JSON"):
        load_config_files([str(broken)])
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    with pytest.raises(ConfigFileError, match=r"deep\.json: not valid JSON"):
        load_config_files([str(deep)])
    with pytest.raises(ConfigFileError, match="nodir: cannot list"):
        load_config_files([], [str(tmp_path / "nodir")])


def test_go_durations() -> None:
    assert parse_go_duration("30s") == 30.0
    assert parse_go_duration("1h2m3.5s") == 3723.5
    assert parse_go_duration("500ms") == 0.5
    assert parse_go_duration("0") == 0.0
    for bad in ("", "30", "s", "1d", "-1s"):
        with pytest.raises(ValueError, match="duration"):
            parse_go_duration(bad)
