"""Fetching http(s) image URLs so upstreams that only take inline images can see them."""

from __future__ import annotations

import asyncio
import base64

import aiohttp

from proxy.errors import bad_request

MAX_IMAGE_BYTES = 20 * 1024 * 1024


async def fetch_images(
    session: aiohttp.ClientSession, urls: list[str], timeout: float
) -> dict[str, tuple[str, str]]:
    """url -> (mime type, base64 data); a 400 naming the URL when one cannot be fetched."""
    unique = list(dict.fromkeys(urls))
    results = await asyncio.gather(*(_fetch(session, url, timeout) for url in unique))
    return dict(zip(unique, results, strict=True))


async def _fetch(session: aiohttp.ClientSession, url: str, timeout: float) -> tuple[str, str]:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status != 200:
                raise bad_request(f"image {url} could not be fetched: HTTP {response.status}")
            if (response.content_length or 0) > MAX_IMAGE_BYTES:
                raise bad_request(f"image {url} is larger than {MAX_IMAGE_BYTES} bytes")
            data = await response.content.read(MAX_IMAGE_BYTES + 1)
            if len(data) > MAX_IMAGE_BYTES:
                raise bad_request(f"image {url} is larger than {MAX_IMAGE_BYTES} bytes")
            mime = response.content_type
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise bad_request(
            f"image {url} could not be fetched: {exc or type(exc).__name__}"
        ) from None
    if not mime.startswith("image/"):
        raise bad_request(f"image {url} is not an image (Content-Type {mime})")
    return mime, base64.b64encode(data).decode()
