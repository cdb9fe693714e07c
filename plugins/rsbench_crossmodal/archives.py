"""Archive recipes of the cross-modal datasets (``rsbench data prepare``). Light: no numpy.

GUSO: the authors share the pairs (behind a Google-Form request, links in the repo README) as
zips per terrain and split, ``{Urban,Rural,Plain,Hill,Water}/<terrain>-{train,val,test}.zip`` and
``Disaster/disaster-test.zip``; each is optional (a user may fetch some terrains) and the final
check names an empty split. The member layout inside the zips is not documented: the recipe keeps
``{id}_opt.png``, ``{id}_sar.png`` and ``{id}_H.txt`` (the ground-truth homography rsbench's
registration reads) at any depth below an optional ``<terrain>-<split>/`` folder. Assumed, not
confirmed; no checksum is published.

DFC23 track 2: IEEE DataPort's ``track2.zip`` (the contest's files page lists ``track1.zip``,
``track2.zip`` and ``DFC23_IEEE-DataPort.zip``), holding ``annotations/buildings_only_*.json`` and
``{train,val,test}/{rgb,sar,height}/`` below ``DFC_Track_2/`` (the tree in DFC2023-baseline's
``track2/README.md``), or at the top. The ``merge/`` folders ``make_merge.py`` writes are not read.
No checksum is published.
"""

from __future__ import annotations

from rsbench.io.data_prepare import Archive, Recipe, Variant

GUSO_PAGE = "https://github.com/vision-heng/GUSO"
TERRAINS = ("Urban", "Rural", "Plain", "Hill", "Water")
_PAIR = ("*_opt.png", "*_sar.png", "*_H.txt")


def _guso() -> tuple[Archive, ...]:
    archives = []
    for split in ("train", "val", "test"):
        zips = [f"{t}/{t.lower()}-{split}.zip" for t in TERRAINS]
        if split == "test":
            zips.append("Disaster/disaster-test.zip")
        for k, name in enumerate(zips):
            archives.append(Archive(name=name, url=f"{GUSO_PAGE} (Google-Form request)", dest=split,
                                    top=name.rsplit("/", 1)[1][:-4], include=_PAIR, optional=True,
                                    share=(k, len(zips)),
                                    note="member layout undocumented: pairs + _H.txt assumed"))
    return tuple(archives)


GUSO = Recipe(
    dataset="guso",
    page=GUSO_PAGE,
    variants=(Variant(name="release", description="<Terrain>/<terrain>-<split>.zip and Disaster/disaster-test.zip",
                      archives=_guso()),),
    notes="each zip is optional; a split with no pair is refused by the final check",
)

DFC23_PAGE = ("https://ieee-dataport.org/competitions/"
              "2023-ieee-grss-data-fusion-contest-large-scale-fine-grained-building-classification")

DFC23_T2 = Recipe(
    dataset="dfc23-t2",
    page=DFC23_PAGE,
    variants=(Variant(
        name="dataport",
        description="track2.zip from IEEE DataPort",
        archives=(Archive(name="track2.zip", aliases=("DFC_Track_2.zip",), url=f"{DFC23_PAGE}#files", top="DFC_Track_2",
                          include=("annotations/buildings_only_*.json", "*/rgb/*.tif", "*/sar/*.tif", "*/height/*.tif"),
                          note="the top folder DFC_Track_2/ is stripped where present; the later test release, "
                               "if a separate zip, is unpacked by hand"),),
    ),),
)
