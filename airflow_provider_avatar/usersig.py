"""TRTC ``UserSig``: the signature a user (here the ingest robot) joins a room with.

Made from the application's SDK secret key (TRTC console; not the API SecretKey) with Tencent's
TLSSigAPIv2 algorithm, through the official ``tls-sig-api-v2`` package (imported on use). The key
and the signature are secrets: never logged, never in XCom, trigger kwargs or error text.
"""

from __future__ import annotations

#: Validity of a generated UserSig in seconds: a robot only needs it to join once.
DEFAULT_EXPIRE = 86400


def gen_user_sig(sdk_app_id: int, sdk_secret_key: str, user_id: str, expire: int = DEFAULT_EXPIRE) -> str:
    """A UserSig for ``user_id`` valid for ``expire`` seconds from now (the machine's clock)."""
    from TLSSigAPIv2 import TLSSigAPIv2

    if not isinstance(user_id, str) or not user_id.strip():
        raise ValueError(f"user_id must be a non-empty string; got {user_id!r}")
    if isinstance(expire, bool) or not isinstance(expire, int) or expire <= 0:
        raise ValueError(f"expire must be a positive number of seconds; got {expire!r}")
    if not sdk_secret_key:
        raise ValueError("an SDK secret key is needed to generate a UserSig")
    sig: str = TLSSigAPIv2(sdk_app_id, sdk_secret_key).gen_sig(user_id, expire)
    return sig
