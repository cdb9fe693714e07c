"""Archive recipes of the classification datasets (``rsbench data prepare``). Light: no numpy.

AID is linked from its project page (Baidu Pan / OneDrive) as one zip holding ``AID/<Class>/``;
the class folders go to the prepared root itself (the checker accepts ``AID/`` or its parent).
Copies saved without the top folder are accepted too. No checksum is published.

The authors distribute ``NWPU-RESISC45.rar`` (OneDrive, linked from the paper's page), which
Python cannot read; torchgeo re-publishes it as ``NWPU-RESISC45.zip`` on Hugging Face with an md5,
holding ``NWPU-RESISC45/<class>/<class>_NNN.jpg``. Either the zip (verified) or the rar unpacked by
the user next to it (``NWPU-RESISC45/``, then copied or linked) is prepared.

BigEarthNet v1 (ben-s2, ben-mm): ``BigEarthNet-S2-v1.0.tar.gz`` (holding ``BigEarthNet-v1.0/<patch>/``)
and ``BigEarthNet-S1-v1.0.tar.gz`` (``BigEarthNet-S1-v1.0/<patch>/``) from bigearth.net, plus the
19-class models' ``{train,val,test}.csv`` (plain files from TU Berlin's GitLab). torchgeo lists md5s
for the tarballs, but the provider publishes none, so none is enforced.

BigEarthNet v2 (reBEN; the ``v2`` variant of ben-s2 and ben-mm): Zenodo record 10891137 holds
``BigEarthNet-S2.tar.zst`` (63 GB; members ``BigEarthNet-S2/<tile>/<patch>/<patch>_Bxx.tif``),
``BigEarthNet-S1.tar.zst`` (54 GB; ``BigEarthNet-S1/<scene>/<s1_name>/<s1_name>_{VV,VH}.tif``),
``Reference_Maps.tar.zst`` (pixel-level CLC maps, not read by rsbench, so not asked for),
``metadata.parquet`` (labels and the official splits) and the snow/cloud patches' own parquet (not
read). The .tar.zst archives are read streamed with the ``zstandard`` package. Zenodo shows an md5
per file on the record page, not recorded here (not reachable when this was written). torchgeo
re-packs v2 as split ``.tar.gz`` parts on Hugging Face (``BigEarthNet-S2.tar.gzaa``...); that copy is
not a variant here.

fMoW-Sentinel (fmow-s2): the Stanford Digital Repository item vg497cb6002 lists five files:
``fmow-sentinel.tar.gz`` (77.5 GB, members ``fmow-sentinel/{train,val,test}/<category>/...``),
``train.csv``, ``val.csv``, ``test_gt.csv`` and a README; the CSVs are plain files (also found in
``fmow-sentinel/`` of the downloads). All go to ``fmow-sentinel/``. No checksum is published.
"""

from __future__ import annotations

from rsbench.io.data_prepare import Archive, Recipe, Variant

AID_PAGE = "https://captain-whu.github.io/AID/"

AID = Recipe(
    dataset="aid",
    page=AID_PAGE,
    variants=(Variant(
        name="release",
        description="AID.zip (30 class folders of 600x600 JPEGs)",
        fixture_dir="AID",
        archives=(Archive(name="AID.zip", url=AID_PAGE, top="AID", include=("*/*.jpg",)),),
    ),),
)

RESISC45_URL = ("https://hf.co/datasets/torchgeo/resisc45/resolve/a826b44d938a883185f11ebe3d512d38b464312f/"
                "NWPU-RESISC45.zip")

RESISC45 = Recipe(
    dataset="resisc45",
    page="https://gcheng-nwpu.github.io/#Datasets",
    variants=(Variant(
        name="torchgeo-zip",
        description="NWPU-RESISC45.zip (torchgeo's zip of the authors' rar), or the rar unpacked to NWPU-RESISC45/",
        fixture_dir="NWPU-RESISC45",
        archives=(Archive(name="NWPU-RESISC45.zip", url=RESISC45_URL, top="NWPU-RESISC45", include=("*/*.jpg",),
                          md5="75206b2e16446591afa88e2628744886",
                          note="the authors' NWPU-RESISC45.rar (OneDrive) unpacked to NWPU-RESISC45/ also works"),),
    ),),
)

BEN_PAGE = "https://bigearth.net/"
BEN_SPLITS = "https://git.tu-berlin.de/rsim/BigEarthNet-MM_19-classes_models/-/raw/master/splits/"
#: The 19-class models' split lists, plain CSVs (torchgeo saves them as bigearthnet-<split>.csv).
_BEN_CSVS = tuple(Archive(name=f"{split}.csv", aliases=(f"bigearthnet-{split}.csv",), url=f"{BEN_SPLITS}{split}.csv")
                  for split in ("train", "val", "test"))
_BEN_S2 = Archive(name="BigEarthNet-S2-v1.0.tar.gz", url="https://bigearth.net/downloads/BigEarthNet-S2-v1.0.tar.gz",
                  dest="BigEarthNet-v1.0", top="BigEarthNet-v1.0", include=("*/*.tif", "*/*.json"))
_BEN_S1 = Archive(name="BigEarthNet-S1-v1.0.tar.gz", url="https://bigearth.net/downloads/BigEarthNet-S1-v1.0.tar.gz",
                  dest="BigEarthNet-S1-v1.0", top="BigEarthNet-S1-v1.0", include=("*/*.tif", "*/*.json"))

REBEN_FILES = "https://zenodo.org/records/10891137/files/"
_REBEN_NOTE = "Zenodo lists an md5 on the record page; not recorded here"
_REBEN_META = Archive(name="metadata.parquet", url=f"{REBEN_FILES}metadata.parquet", note=_REBEN_NOTE)
_REBEN_S2 = Archive(name="BigEarthNet-S2.tar.zst", url=f"{REBEN_FILES}BigEarthNet-S2.tar.zst", dest="BigEarthNet-S2",
                    top="BigEarthNet-S2", include=("*/*/*.tif",), note=_REBEN_NOTE)
_REBEN_S1 = Archive(name="BigEarthNet-S1.tar.zst", url=f"{REBEN_FILES}BigEarthNet-S1.tar.zst", dest="BigEarthNet-S1",
                    top="BigEarthNet-S1", include=("*/*/*.tif",), note=_REBEN_NOTE)
BEN_NOTES = ("v1 is the release the papers' BigEarthNet numbers were measured on; v2 (reBEN) has other patches and "
             "its own splits (the row records which release a run read); with both downloaded, --variant picks one")

BEN_S2 = Recipe(
    dataset="ben-s2",
    page=BEN_PAGE,
    variants=(
        Variant(name="v1", description="BigEarthNet-S2-v1.0.tar.gz + the 19-class {train,val,test}.csv",
                archives=(_BEN_S2, *_BEN_CSVS)),
        Variant(name="v2", description="reBEN: BigEarthNet-S2.tar.zst + metadata.parquet (Zenodo 10891137)",
                fixture="rsbench_classification.reben:write_fixture", archives=(_REBEN_S2, _REBEN_META)),
    ),
    notes=BEN_NOTES,
)

BEN_MM = Recipe(
    dataset="ben-mm",
    page=BEN_PAGE,
    variants=(
        Variant(name="v1", description="BigEarthNet-S2-v1.0.tar.gz + BigEarthNet-S1-v1.0.tar.gz + the "
                "19-class {train,val,test}.csv", archives=(_BEN_S2, _BEN_S1, *_BEN_CSVS)),
        Variant(name="v2", description="reBEN: BigEarthNet-S2.tar.zst + BigEarthNet-S1.tar.zst + metadata.parquet "
                "(Zenodo 10891137)", fixture="rsbench_classification.reben:write_mm_fixture",
                archives=(_REBEN_S2, _REBEN_S1, _REBEN_META)),
    ),
    notes=BEN_NOTES,
)

FMOW_PAGE = "https://purl.stanford.edu/vg497cb6002"
FMOW_FILES = "https://stacks.stanford.edu/file/druid:vg497cb6002/"

FMOW_S2 = Recipe(
    dataset="fmow-s2",
    page=FMOW_PAGE,
    variants=(Variant(
        name="sdr",
        description="fmow-sentinel.tar.gz + train.csv, val.csv, test_gt.csv from the Stanford Digital Repository",
        archives=(
            Archive(name="fmow-sentinel.tar.gz", aliases=("fmow-sentinel.tar",), url=f"{FMOW_FILES}fmow-sentinel.tar.gz",
                    dest="fmow-sentinel", top="fmow-sentinel", include=("train/*.tif", "val/*.tif", "test/*.tif")),
            *(Archive(name=name, aliases=(f"fmow-sentinel/{name}",), url=f"{FMOW_FILES}{name}", dest="fmow-sentinel")
              for name in ("train.csv", "val.csv", "test_gt.csv")),
        ),
    ),),
)
