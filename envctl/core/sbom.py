"""An SPDX 2.3 (JSON) software bill of materials of a locked environment."""

from __future__ import annotations

from typing import Any

from envctl.core.lock import LockedEnv


def _purl(manager: str, name: str, version: str) -> str:
    return f"pkg:{'pypi' if manager == 'pip' else 'conda'}/{name}@{version}"


def spdx_document(env: LockedEnv, env_name: str, created: str, tool_version: str) -> dict[str, Any]:
    """The SBOM as a JSON-ready dict; ``created`` is the lock's fixed time, never the clock."""
    packages = []
    for index, item in enumerate(env.files):
        packages.append(
            {
                "SPDXID": f"SPDXRef-Package-{index}",
                "name": item.name,
                "versionInfo": item.version,
                "downloadLocation": item.url,
                "filesAnalyzed": False,
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": "NOASSERTION",
                "copyrightText": "NOASSERTION",
                "checksums": [
                    {"algorithm": "SHA256", "checksumValue": item.sha256},
                    *([{"algorithm": "MD5", "checksumValue": item.md5}] if item.md5 else []),
                ],
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": _purl(item.manager, item.name, item.version),
                    }
                ],
            }
        )
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"envctl-env-{env_name}",
        "documentNamespace": f"https://envctl.invalid/spdx/{env_name}/{env.content_hash}",
        "creationInfo": {"created": created, "creators": [f"Tool: envctl-{tool_version}"]},
        "packages": packages,
        "relationships": [
            {
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": p["SPDXID"],
            }
            for p in packages
        ],
    }
