"""The addon's option: a bad `--set calo_config` is refused and the running config stays."""

from __future__ import annotations

import asyncio

import pytest
from mitmproxy.exceptions import OptionsError
from mitmproxy.test import taddons

from calo_addon import Calo
from calo_addon import config as cfg


def test_bad_calo_config_is_refused_and_the_old_one_stays(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("api_keys: [first-key]\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("api_keys: [k]\nbogus_key: 1\n")

    async def go():
        addon = Calo(log_file=str(tmp_path / "calo.log"))
        with taddons.context(addon) as tctx:
            tctx.configure(addon, calo_config=str(good))
            before = addon.pipeline
            assert before.settings.api_keys == ("first-key",)
            with pytest.raises(OptionsError, match="bogus_key"):
                tctx.configure(addon, calo_config=str(bad))
            assert addon.pipeline is before
            addon.done()
            tctx.master._legacy_log_events.uninstall()

    asyncio.run(go())


def test_reliability_settings_from_python():
    addon = Calo(
        api_keys=["r"],
        max_retries=0,
        connect_timeout=0.5,
        stream_idle_timeout=3,
        max_body_bytes=1000,
        key_cooldown_max=9,
    )
    settings = cfg.load_settings(None, {}, addon._overrides)
    assert (settings.max_retries, settings.connect_timeout, settings.stream_idle_timeout) == (
        0,
        0.5,
        3,
    )
    assert (settings.max_body_bytes, settings.key_cooldown_max) == (1000, 9)
