"""calo_addon: one authenticated, observable front door to Gemini, OpenAI-compatible and
AWS Bedrock APIs, as a mitmproxy addon.

    mitmdump -s calo_addon/__init__.py --mode reverse:https://generativelanguage.googleapis.com

This file is both the package `calo_addon` and the script mitmproxy's `-s` loads. mitmproxy
loads a script outside its package (as `__mitmproxy_script__.__init__`), so relative imports
fail there: as a script it puts the repository root on sys.path, drops any `calo_addon.*`
modules already imported (so editing this file hot-reloads the whole addon) and imports the
package properly.
"""

if __name__ != "calo_addon":  # loaded by mitmproxy's -s
    import os as _os
    import sys as _sys

    _root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
    if _root not in _sys.path:
        _sys.path.insert(0, _root)
    for _name in [n for n in _sys.modules if n == "calo_addon" or n.startswith("calo_addon.")]:
        del _sys.modules[_name]

    from calo_addon import (  # type: ignore[attr-defined]  # the package, not this script
        AWSCredentials,
        Calo,
        RouteConfig,
        create_aws_sigv4_provider,
        create_passthrough_bedrock_provider,
    )

    addons = [Calo()]
else:
    from .addon import Calo
    from .aws import create_aws_sigv4_provider, create_passthrough_bedrock_provider
    from .settings import AWSCredentials, RouteConfig

    __all__ = [
        "AWSCredentials",
        "Calo",
        "RouteConfig",
        "create_aws_sigv4_provider",
        "create_passthrough_bedrock_provider",
    ]
