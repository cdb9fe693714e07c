"""Archive recipes of the change-detection datasets (``rsbench data prepare``). Light: no numpy.

LEVIR-CD: the authors' release (Google Drive / Baidu, linked from the project page) and its
Hugging Face mirror that torchgeo downloads are ``train.zip``, ``val.zip``, ``test.zip``, each
holding ``A/``, ``B/``, ``label/`` at its top (torchgeo unpacks all three into one folder). They go
to ``{train,val,test}/{A,B,label}/``. torchgeo lists md5s of the mirror's copies; the authors
publish none, and a copy from the authors' drive need not be byte-identical, so none is enforced.
Variant ``crops256``: the BIT_CD / ChangeFormer-style ``LEVIR-CD256.zip`` (Dropbox, linked from their READMEs):
the tiles cut into 256 px crops in ``A/``, ``B/``, ``label/`` plus ``list/{train,val,test}.txt``
(below a ``LEVIR-CD256/`` folder where the copy has one); no checksum is published. ``levir_cd``
reads either; the row records which (the papers' test set is the full tiles).

WHU-CD: two variants, as ``whu_cd`` reads two layouts. ``repack``: ``WHU-CD-256.zip``, the 256 px
re-pack with ``list/{train,val,test}.txt`` that BIT_CD/ChangeFormer-style code distributes (Dropbox);
``official``: the provider's ``Building change detection dataset_add.zip`` (WHU study site), whose
``1. The two-period image data/`` holds the whole 2012/2016 train and test scenes.

OSCD: three zips from IMT's file share (links on the project page, as torchgeo downloads them),
each holding its folder at the top: ``Onera Satellite Change Detection dataset - Images.zip``
(only the co-registered ``imgs_{1,2}_rect/`` bands, ``dates.txt`` and the split lists are kept;
the raw ``imgs_{1,2}/`` and ``pair/`` are not read) and the ``- Train Labels`` / ``- Test Labels``
zips (``<city>/cm/``). No checksum is published.

DFC25 track 2 (BRIGHT): two variants. ``zenodo``: the contest's ``dfc25_track2_trainval.zip``
(Zenodo 14619798; ``train/`` and ``val/`` with ``pre-event/``, ``post-event/``, ``target/``, below a
``dfc25_track2_trainval/`` folder where the copy has one) plus the legacy set-level lists
``{train,holdout,val}_setlevel.txt`` (plain files of the BRIGHT repo; ``test_setlevel.txt``
optional). ``torchgeo``: torchgeo's re-pack ``dfc25_track2_trainval_with_split.zip`` holding both
(torchgeo's sha256 is noted; the engine verifies md5 only). Zenodo shows an md5 per file on the
record page, not recorded here (not reachable when this was written).

Dyna.-S2 CD: DynamicEarthNet's mediaTUM release, the recipe of ``rsbench_segmentation.archives``
with ``sentinel2.zip`` required.
"""

from __future__ import annotations

from rsbench.io.data_prepare import Archive, Recipe, Variant
from rsbench_segmentation.archives import dynamicearthnet

LEVIR_PAGE = "https://justchenhao.github.io/LEVIR/"
LEVIR_MIRROR = ("https://huggingface.co/datasets/satellite-image-deep-learning/LEVIR-CD/resolve/"
                "6a6bb0a5b389403d81c05e33bf08bc0b9e5f13a6/")

LEVIR_CD = Recipe(
    dataset="levir-cd",
    page=LEVIR_PAGE,
    variants=(Variant(
        name="release",
        description="train.zip, val.zip, test.zip (full 1024 px pairs)",
        fixture_dir="LEVIR-CD",
        archives=tuple(
            Archive(name=f"{split}.zip", url=f"{LEVIR_PAGE} (mirror: {LEVIR_MIRROR}{split}.zip)", dest=split,
                    top=split, include=("A/*.png", "B/*.png", "label/*.png"))
            for split in ("train", "val", "test")),
    ), Variant(
        name="crops256",
        description="LEVIR-CD256.zip (BIT_CD/ChangeFormer's 256 px crops with list/{train,val,test}.txt)",
        fixture="rsbench_change.levir_cd:write_crops_fixture",
        fixture_dir="LEVIR-CD256",
        archives=(Archive(name="LEVIR-CD256.zip", url="https://www.dropbox.com/s/18fb5jo0npu5evm/LEVIR-CD256.zip",
                          top="LEVIR-CD256", include=("A/*.png", "B/*.png", "label/*.png", "list/*.txt"),
                          note="the zip several change-detection READMEs link (e.g. wgcban's SemiCD); "
                               "ChangeFormer's README links a Dropbox folder of the same layout; crops, not the "
                               "official test tiles"),),
    )),
)

WHU_PAGE = "https://study.rsgis.whu.edu.cn/pages/download/building_dataset.html"
WHU_RELEASE = "Building change detection dataset_add"

WHU_CD = Recipe(
    dataset="whu-cd",
    page=WHU_PAGE,
    variants=(
        Variant(
            name="repack",
            description="the 256 px re-pack WHU-CD-256.zip with list/{train,val,test}.txt",
            fixture_dir="WHU-CD-256",
            archives=(Archive(name="WHU-CD-256.zip", url="https://www.dropbox.com/s/r76a00jcxp5d3hl/WHU-CD-256.zip",
                              top="WHU-CD-256", include=("A/*", "B/*", "label/*", "list/*.txt")),),
        ),
        Variant(
            name="official",
            description=f"the provider's release '{WHU_RELEASE}.zip' (whole 2012/2016 scenes)",
            fixture="rsbench_change.whu_cd:write_official_fixture",
            fixture_dir=WHU_RELEASE,
            archives=(Archive(name=f"{WHU_RELEASE}.zip", url=WHU_PAGE, top=WHU_RELEASE,
                              include=("1. The two-period image data/*",)),),
        ),
    ),
    notes="whu-cd's split_protocol option picks which layout a run reads when both are prepared",
)

OSCD_PAGE = "https://rcdaudt.github.io/oscd/"
OSCD_NAME = "Onera Satellite Change Detection dataset - {}"

OSCD = Recipe(
    dataset="oscd",
    page=OSCD_PAGE,
    variants=(Variant(
        name="release",
        description="the Images, Train Labels and Test Labels zips",
        archives=(
            Archive(name=OSCD_NAME.format("Images.zip"), url="https://partage.imt.fr/index.php/s/gKRaWgRnLMfwMGo/download",
                    dest=OSCD_NAME.format("Images"), top=OSCD_NAME.format("Images"),
                    include=("*/imgs_1_rect/*.tif", "*/imgs_2_rect/*.tif", "*/dates.txt", "train.txt", "test.txt")),
            Archive(name=OSCD_NAME.format("Train Labels.zip"),
                    url="https://partage.mines-telecom.fr/index.php/s/2D6n03k58ygBSpu/download",
                    dest=OSCD_NAME.format("Train Labels"), top=OSCD_NAME.format("Train Labels"), include=("*/cm/*",)),
            Archive(name=OSCD_NAME.format("Test Labels.zip"), url="https://partage.imt.fr/index.php/s/gpStKn4Mpgfnr63/download",
                    dest=OSCD_NAME.format("Test Labels"), top=OSCD_NAME.format("Test Labels"), include=("*/cm/*",)),
        ),
    ),),
)

BRIGHT_PAGE = "https://github.com/ChenHongruixuan/BRIGHT"
#: The contest-era record (the BRIGHT README now links the concept record 14619797, whose latest
#: version is the full BRIGHT release with a flat pre-event/, post-event/, target/ layout).
BRIGHT_ZENODO = "https://zenodo.org/records/14619798"
BRIGHT_LISTS = f"{BRIGHT_PAGE}/tree/master/dfc25_benchmark/dataset/splitname (legacy set-level lists)"
BRIGHT_FOLDER = "dfc25_track2_trainval"
_BRIGHT_IMAGES = ("train/*.tif", "val/*.tif", "test/*.tif")

DFC25_T2 = Recipe(
    dataset="dfc25-t2",
    page=BRIGHT_PAGE,
    variants=(
        Variant(
            name="zenodo",
            description=f"{BRIGHT_FOLDER}.zip from Zenodo + the BRIGHT repo's {{train,holdout,val}}_setlevel.txt",
            fixture_dir=BRIGHT_FOLDER,
            archives=(
                Archive(name=f"{BRIGHT_FOLDER}.zip", url=BRIGHT_ZENODO, top=BRIGHT_FOLDER, include=_BRIGHT_IMAGES,
                        note="Zenodo lists an md5 on the record page; not recorded here"),
                *(Archive(name=f"{split}_setlevel.txt", url=BRIGHT_LISTS, optional=split == "test")
                  for split in ("train", "holdout", "val", "test")),
            ),
        ),
        Variant(
            name="torchgeo",
            description=f"torchgeo's re-pack {BRIGHT_FOLDER}_with_split.zip (images and the set-level lists)",
            fixture_dir=BRIGHT_FOLDER,
            archives=(Archive(
                name=f"{BRIGHT_FOLDER}_with_split.zip",
                url=("https://hf.co/datasets/isaaccorley/bright/resolve/d19972f5e682ad684dcde35529a6afad4c719f1b/"
                     f"{BRIGHT_FOLDER}_with_split.zip"),
                top=BRIGHT_FOLDER, include=(*_BRIGHT_IMAGES, "*_setlevel.txt"),
                note="torchgeo publishes sha256 aed4aca4d582bc829ba0921b55d488eec6a792c2d1092aac54eb746ef8e6f1cc "
                     "(not an md5: not verified here)"),),
        ),
    ),
    notes="the lists are the legacy set-level ones (train, holdout, val[, test]) the DFC25 leaderboard used; "
          "the repo's newer bda_benchmark/dataset/splitname/dfc25/*_set.txt lists are a different protocol",
)

#: Dyna.-S2 CD reads the DynamicEarthNet release as Dyna.-S2 does (one reader, in segmentation).
DYNA_S2_CD = dynamicearthnet("dyna-s2-cd", ("s2",))
