"""Archive recipes of the segmentation datasets (``rsbench data prepare``). Light: no numpy.

iSAID: the images are DOTA-v1.0's, published as ``{train,val,test}/images/part<k>.zip`` (train in
three parts, val one, test two), each holding ``images/Pxxxx.png``; iSAID adds
``{train,val}/Semantic_masks/images.zip`` holding ``images/Pxxxx_instance_color_RGB.png``. Put both
downloads in one folder with the providers' nesting (as mmseg's dataset guide shows). The test
images have no masks and are optional.
``prepare`` writes the release layout; a folder already in iSAID_Devkit's layout (the masks next to
the images) needs no preparing: ``data check`` reads it as it is.

Potsdam: ISPRS gives the data on request, as ``2_Ortho_RGB.zip`` and ``5_Labels_all_noBoundary.zip``
(mmseg's converter inputs) or, from the current download server, one ``Potsdam.zip`` holding
``Potsdam/2_Ortho_RGB.zip``, ``Potsdam/5_Labels_all_noBoundary.zip``... Either variant is prepared.
Some label zips hold their tiles at the top, others under a folder of the zip's name (torchgeo
reads ``5_Labels_all.zip`` as flat; mmseg's converter accepts both): both are accepted.

DeepGlobe road: the challenge's data as re-published on Kaggle (``deepglobe-road-extraction-dataset.zip``
from the Kaggle CLI, ``archive.zip`` from the browser) holding ``train/``, ``valid/``, ``test/`` and
``metadata.csv``; only ``train/`` has masks and is prepared.

EarthMiss: Zenodo 17231107 (and Baidu Drive) per the authors' README; the file name
``EarthMiss.zip`` holding the 13 ``<City>/`` folders (optionally below ``EarthMiss/``) is assumed.

DynamicEarthNet (dyna-pla, dyna-s2, dyna-mm; dyna-s2-cd in the change plugin): mediaTUM 1650201,
also by rsync, ships ``labels.zip`` (``labels/<cube>_<zone>/...``), one ``planet.<zone>.zip`` per UTM
zone (``planet/<zone>/<tile>/<cube>/PF-SR|PF-QA/``; only PF-SR is kept), ``sentinel1.zip``,
``sentinel2.zip`` and ``checksums.sha512`` (SHA-512: not verified by the engine, which checks md5);
the val/test labels came later (mediaTUM 1738088, ``dynamicearthnet_test_labels.zip`` assumed,
optional); the split lists are plain files from the dynnet authors' webshare. The zone zips are all
optional (the release's zone list is not published as such): the final check names any cube missing.
"""

from __future__ import annotations

from rsbench.io.data_prepare import Archive, Recipe, Variant

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

EARTHMISS_PAGE = "https://github.com/Yi-Heng/EarthMiss"

EARTHMISS = Recipe(
    dataset="earthmiss",
    page=EARTHMISS_PAGE,
    variants=(Variant(
        name="zenodo",
        description="EarthMiss.zip (the 13 city folders) from Zenodo or Baidu Drive",
        archives=(Archive(name="EarthMiss.zip", aliases=("earthmiss.zip",),
                          url="https://zenodo.org/records/17231107 (or Baidu Drive, code jfsq, linked from "
                              f"{EARTHMISS_PAGE})", top="EarthMiss",
                          include=("*/images/RGB/*", "*/images/SAR/*", "*/masks/*"),
                          note="file name assumed (not confirmed): the city folders may sit at the top or "
                               "under EarthMiss/; Zenodo lists an md5 on the record page"),),
    ),),
)

DYNNET_PAGE = "https://mediatum.ub.tum.de/1650201"
DYNNET_SPLITS = "https://vision.in.tum.de/webshare/u/toker/dynnet_training_splits/"
#: Every name a ``planet.<UTM zone>.zip`` can have: the release ships one zip per zone of its cubes.
UTM_ZONES = tuple(f"{n}{h}" for h in "NS" for n in range(1, 61))


def dynamicearthnet(dataset: str, needs: tuple[str, ...]) -> Recipe:
    """DynamicEarthNet's mediaTUM release for an evaluation reading ``needs`` (of s2, s1) besides
    the labels and the Planet cubes (every evaluation needs the Planet folders: the split lines
    name them)."""
    archives = [
        Archive(name="labels.zip", url=f"{DYNNET_PAGE} (rsync m1650201@dataserv.ub.tum.de)", dest="labels",
                top="labels", include=("*/Labels/Raster/*.tif",)),
        Archive(name="dynamicearthnet_test_labels.zip", url="https://mediatum.ub.tum.de/1738088", dest="labels",
                top="dynamicearthnet_test_labels", include=("*/Labels/Raster/*.tif",), optional=True,
                note="the val/test labels released later; name and nesting assumed (not confirmed)"),
        *(Archive(name=f"planet.{zone}.zip", url=f"{DYNNET_PAGE} (rsync m1650201@dataserv.ub.tum.de)",
                  dest="planet", top="planet", include=(f"{zone}/*/*/PF-SR/*.tif",), optional=True)
          for zone in UTM_ZONES),
        *(Archive(name=f"sentinel{k}.zip", url=f"{DYNNET_PAGE} (rsync m1650201@dataserv.ub.tum.de)",
                  dest=f"sentinel{k}", top=f"sentinel{k}", include=("*.tif",), optional=f"s{k}" not in needs,
                  note="nesting assumed: sentinel<k>/<cube>/<cube>_YYYY_MM.tif")
          for k in (2, 1)),
        *(Archive(name=f"dynnet_training_splits/{split}.txt", aliases=(f"{split}.txt",),
                  url=f"{DYNNET_SPLITS}{split}.txt", dest="dynnet_training_splits")
          for split in ("train", "val", "test")),
    ]
    what = " + ".join(["labels.zip", "planet.<zone>.zip"] + [f"sentinel{m[1]}.zip" for m in needs])
    return Recipe(
        dataset=dataset,
        page=DYNNET_PAGE,
        variants=(Variant(name="mediatum", description=f"{what} + dynnet_training_splits/{{train,val,test}}.txt",
                          archives=tuple(archives)),),
        notes=("planet.<zone>.zip: one zip per UTM zone, each optional here; every zone the split lists name is "
               "needed (the final check names any missing cube). mediaTUM publishes checksums.sha512 (SHA-512, "
               "not verified here: check with `sha512sum -c`)"),
    )


DYNA_PLA = dynamicearthnet("dyna-pla", ())
DYNA_S2 = dynamicearthnet("dyna-s2", ("s2",))
DYNA_MM = dynamicearthnet("dyna-mm", ("s2", "s1"))
