"""Archive recipes of the segmentation datasets (``rsbench data prepare``). Light: no numpy.

iSAID: the images are DOTA-v1.0's, published as ``{train,val,test}/images/part<k>.zip`` (train in
three parts, val one, test two), each holding ``images/Pxxxx.png``; iSAID adds
``{train,val}/Semantic_masks/images.zip`` holding ``images/Pxxxx_instance_color_RGB.png``. Put both
downloads in one folder with the providers' nesting (as mmseg's dataset guide shows). The test
images have no masks and are optional.

Potsdam: ISPRS gives the data on request, as ``2_Ortho_RGB.zip`` and ``5_Labels_all_noBoundary.zip``
(mmseg's converter inputs) or, from the current download server, one ``Potsdam.zip`` holding
``Potsdam/2_Ortho_RGB.zip``, ``Potsdam/5_Labels_all_noBoundary.zip``... Either variant is prepared.
Some label zips hold their tiles at the top, others under a folder of the zip's name (torchgeo
reads ``5_Labels_all.zip`` as flat; mmseg's converter accepts both): both are accepted.

DeepGlobe road: the challenge's data as re-published on Kaggle (``deepglobe-road-extraction-dataset.zip``
from the Kaggle CLI, ``archive.zip`` from the browser) holding ``train/``, ``valid/``, ``test/`` and
``metadata.csv``; only ``train/`` has masks and is prepared.
"""

from __future__ import annotations

from rsbench.data_prepare import Archive, Recipe, Variant

DOTA_PAGE = "https://captain-whu.github.io/DOTA/dataset.html"
ISAID_PAGE = "https://captain-whu.github.io/iSAID/dataset.html"
ISAID_PARTS = {"train": 3, "val": 1, "test": 2}


def _isaid_archives() -> tuple[Archive, ...]:
    archives = []
    for split, n in ISAID_PARTS.items():
        for k in range(n):
            archives.append(Archive(
                name=f"{split}/images/part{k + 1}.zip", url=f"{DOTA_PAGE} (DOTA-v1.0 {split} images)",
                dest=f"{split}/images", top="images", include=("P*.png",), share=(k, n),
                optional=split == "test"))
        if split != "test":
            archives.append(Archive(
                name=f"{split}/Semantic_masks/images.zip", url=f"{ISAID_PAGE} (iSAID {split} semantic masks)",
                dest=f"{split}/Semantic_masks/images", top="images", include=("*_instance_color_RGB.png",)))
    return tuple(archives)


ISAID = Recipe(
    dataset="isaid",
    page=ISAID_PAGE,
    variants=(Variant(name="release", description="DOTA-v1.0 image parts + iSAID Semantic_masks zips",
                      fixture_dir="iSAID", archives=_isaid_archives()),),
)

ISPRS_PAGE = "https://www.isprs.org/education/benchmarks/UrbanSemLab/2d-sem-label-potsdam.aspx"


def _potsdam(inside: str = "") -> tuple[Archive, ...]:
    prefix = "Potsdam/" if inside else ""
    return (
        Archive(name=f"{prefix}2_Ortho_RGB.zip", url=ISPRS_PAGE, inside=inside, dest="2_Ortho_RGB", top="2_Ortho_RGB",
                include=("top_potsdam_*_RGB.tif", "top_potsdam_*_RGB.tfw")),
        Archive(name=f"{prefix}5_Labels_all_noBoundary.zip", url=ISPRS_PAGE, inside=inside,
                dest="5_Labels_all_noBoundary", top="5_Labels_all_noBoundary",
                include=("top_potsdam_*_label_noBoundary.tif", "top_potsdam_*_label_noBoundary.tfw")),
    )


POTSDAM = Recipe(
    dataset="potsdam",
    page=ISPRS_PAGE,
    variants=(
        Variant(name="isprs-zips", description="2_Ortho_RGB.zip + 5_Labels_all_noBoundary.zip",
                archives=_potsdam()),
        Variant(name="potsdam-zip", description="Potsdam.zip holding Potsdam/2_Ortho_RGB.zip and "
                "Potsdam/5_Labels_all_noBoundary.zip", archives=_potsdam(inside="Potsdam.zip")),
    ),
)

KAGGLE = "https://www.kaggle.com/datasets/balraj98/deepglobe-road-extraction-dataset"

DEEPGLOBE_ROAD = Recipe(
    dataset="deepglobe-road",
    page="https://competitions.codalab.org/competitions/18467",
    variants=(Variant(
        name="kaggle",
        description="the Kaggle zip of the challenge data (train/ with masks)",
        archives=(Archive(name="deepglobe-road-extraction-dataset.zip", aliases=("archive.zip",), url=KAGGLE,
                          include=("train/*_sat.jpg", "train/*_mask.png")),),
    ),),
)
