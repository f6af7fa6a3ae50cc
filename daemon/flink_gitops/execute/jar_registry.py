"""Which jar id on a cluster holds a digest's bytes: reuse what we uploaded, record what we upload.

A jar is uploaded once per content digest per cluster (``Store.artifacts``)
and reused by every job and cycle after that, as long as Flink still lists it
(one ``GET /jars`` per cluster per cycle, the first time a cluster is asked
about; a registry lives for one cycle). Uploads are written ahead: the
executor records that it is about to upload (with the time) before it sends
the jar, and a resumed operation that finds no recorded jar id adopts the jar
of that name Flink lists as uploaded since then (our jar files are named
``<sha256>.jar``), so a crash between the upload and its record leaves no
orphan. Writes are fenced by the cluster's lease epoch. Neighbours:
``execute.procedures`` (asks, through ``execute.ports.JarRegistry``),
``execute.jars_gc`` (deletes what nothing references), ``record.store.artifacts``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from loguru import logger

from flink_gitops.flink.models import JarList
from flink_gitops.record.store import Store

#: how far Flink's upload time may lag the recorded intent (clock skew, file mtime granularity), ms.
ADOPT_SKEW_MS = 60_000


class JarCluster(Protocol):
    """What the registry and the collector need of a cluster (``FlinkClient`` has it)."""

    def jars(self) -> JarList: ...

    def delete_jar(self, jar_id: str) -> None: ...


class StoreJarRegistry:
    """``execute.ports.JarRegistry`` over the store and the clusters' jar lists, for one cycle."""

    def __init__(
        self, store: Store, clusters: Mapping[str, JarCluster], epoch_of: Callable[[str], int]
    ) -> None:
        self.store = store
        self.clusters = clusters
        self.epoch_of = epoch_of
        #: cluster -> jar ids Flink listed (read once per cycle), plus those uploaded since.
        self._listed: dict[str, set[str]] = {}
        #: GET /jars made (for tests and metrics).
        self.listings = 0

    def _list(self, cluster: str) -> JarList:
        self.listings += 1
        return self.clusters[cluster].jars()

    def listed(self, cluster: str) -> set[str]:
        found = self._listed.get(cluster)
        if found is None:
            found = self._listed[cluster] = {f.id for f in self._list(cluster).files}
        return found

    def lookup(self, cluster: str, digest: str) -> str | None:
        """The jar id we recorded for ``digest`` on ``cluster`` if Flink still lists it."""
        row = self.store.artifacts.get(cluster, digest)
        if row is None:
            return None
        if row.jar_id not in self.listed(cluster):
            logger.info(
                "cluster {}: jar {} is no longer listed by Flink; uploading again", cluster, row.jar_id
            )
            return None
        self.store.artifacts.mark_used(cluster, digest, epoch=self.epoch_of(cluster))
        return row.jar_id

    def adopt(self, cluster: str, digest: str, file_name: str, since_ms: int) -> str | None:
        """After a crash mid-upload: the jar named ``file_name`` Flink lists as uploaded since then."""
        fresh = self._list(cluster).files
        self._listed[cluster] = {f.id for f in fresh}
        mine = [
            f
            for f in fresh
            if f.name == file_name and f.uploaded is not None and f.uploaded >= since_ms - ADOPT_SKEW_MS
        ]
        if not mine:
            return None
        newest = max(mine, key=lambda f: (f.uploaded or 0, f.id))
        self.uploaded(cluster, digest, newest.id)
        logger.info("cluster {}: adopting jar {} that an earlier upload left unrecorded", cluster, newest.id)
        return newest.id

    def uploaded(self, cluster: str, digest: str, jar_id: str) -> None:
        self.store.artifacts.record_upload(cluster, digest, jar_id, epoch=self.epoch_of(cluster))
        self.listed(cluster).add(jar_id)

    def gone(self, cluster: str, digest: str, jar_id: str) -> None:
        """Flink said the jar does not exist (deleted by hand, or a JobManager without a fixed upload dir)."""
        self.store.artifacts.forget(cluster, digest, jar_id, epoch=self.epoch_of(cluster))
        self.listed(cluster).discard(jar_id)
