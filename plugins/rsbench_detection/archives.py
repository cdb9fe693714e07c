"""Archive recipe of DIOR / DIOR-R (``rsbench data prepare``). Light: no numpy.

The authors' Google Drive folder (linked from their page) holds four zips: ``JPEGImages-trainval.zip``
and ``JPEGImages-test.zip`` (each with its folder at the top), ``Annotations.zip`` (``Annotations/``
with ``Horizontal Bounding Boxes/`` and ``Oriented Bounding Boxes/``) and ``ImageSets.zip``
(``ImageSets/Main/{train,val,test}.txt``; copies without the top folder are accepted). No checksum
is published.

FAIR1M v1.0: the authors' Google Drive files as torchgeo lists them, with the providers' nesting:
``train/part1/images.zip``, ``train/part1/labelXml.zip``, ``train/part2/images.zip``,
``train/part2/labelXmls.zip``, ``validation/images.zip``, ``validation/labelXmls.zip`` and
``test/images0.zip``..``images2.zip``; the image zips hold ``images/``, the label zips ``labelXml/``.
The label zips' names differ between parts (``labelXml`` / ``labelXmls``); either spelling is
accepted for each. No checksum is published by the authors.

SARDet-100K: the authors link Baidu Disk, OneDrive and ModelScope, and the Kaggle mirror
greatbird/sardet-100k; all hold ``SARDet_100K/{Annotations,JPEGImages}/``. The file name
``SARDet_100K.zip`` is assumed; the Kaggle names ``sardet-100k.zip`` (CLI) and ``archive.zip``
(browser) are accepted. No checksum is published.

UBCv2: the RGB+SAR pack is on Baidu Drive only (linked from the UBCv2 branch of
AICyberTeam/UBC-dataset); ``UBCv2.zip`` (or ``UBCv2_RGB_SAR.zip``) holding ``annotations/`` and
``images/`` below an optional ``UBCv2/`` is assumed, not confirmed. No checksum is published.
"""

from __future__ import annotations

from rsbench.io.data_prepare import Archive, Recipe, Variant

DIOR_PAGE = "https://gcheng-nwpu.github.io/#Datasets"
DRIVE = "https://drive.google.com/open?id="

DIOR = Recipe(
    dataset="dior",
    page=DIOR_PAGE,
    variants=(Variant(
        name="release",
        description="JPEGImages-trainval.zip, JPEGImages-test.zip, Annotations.zip, ImageSets.zip",
        fixture_dir="DIOR",
        archives=(
            Archive(name="JPEGImages-trainval.zip", url=f"{DRIVE}1ZHbHDM6hYAEGDC_K5eiW0yF_lzVgpuir (page {DIOR_PAGE})",
                    dest="JPEGImages-trainval", top="JPEGImages-trainval", include=("*.jpg",)),
            Archive(name="JPEGImages-test.zip", url=f"{DRIVE}11SXPqcESez9qTn4Z5Q3v35K9hRwO_epr (page {DIOR_PAGE})",
                    dest="JPEGImages-test", top="JPEGImages-test", include=("*.jpg",)),
            Archive(name="Annotations.zip", url=f"{DRIVE}1KoQzqR20qvIXDf1qsXCHGxD003IPmXMw (page {DIOR_PAGE})",
                    dest="Annotations", top="Annotations",
                    include=("Horizontal Bounding Boxes/*.xml", "Oriented Bounding Boxes/*.xml")),
            Archive(name="ImageSets.zip", url=f"{DRIVE}1vOmzwxpBtwbK5o8xSa9u0IdB4H95MBHw (page {DIOR_PAGE})",
                    dest="ImageSets", top="ImageSets", include=("Main/*.txt",)),
        ),
    ),),
)

FAIR1M_PAGE = "https://www.gaofen-challenge.com/benchmark"
GDRIVE = "https://drive.google.com/file/d/"


def _fair1m() -> tuple[Archive, ...]:
    archives = []
    drive = (("train/part1", "1LWT_ybL-s88Lzg9A9wHpj0h2rJHrqrVf", "1CnOuS8oX6T9JMqQnfFsbmf7U38G6Vc8u"),
             ("train/part2", "1cx4MRfpmh68SnGAYetNlDy68w0NgKucJ", "1RFVjadTHA_bsB7BJwSZoQbiyM7KIDEUI"),
             ("validation", "1lSSHOD02B6_sUmr2b-R1iqhgWRQRw-S9", "1sTTna1C5n3Senpfo-73PdiNilnja1AV4"))
    for folder, images, labels in drive:
        label_zip = "labelXml.zip" if folder == "train/part1" else "labelXmls.zip"
        other = "labelXmls.zip" if label_zip == "labelXml.zip" else "labelXml.zip"
        archives.append(Archive(name=f"{folder}/images.zip", url=f"{GDRIVE}{images}", dest=f"{folder}/images",
                                top="images", include=("*.tif",)))
        archives.append(Archive(name=f"{folder}/{label_zip}", aliases=(f"{folder}/{other}",),
                                url=f"{GDRIVE}{labels}", dest=f"{folder}/labelXml", top="labelXml",
                                include=("*.xml",)))
    for k in range(3):
        archives.append(Archive(name=f"test/images{k}.zip",
                                url=f"{FAIR1M_PAGE} (FAIR1M v1.0 test images, Google Drive)",
                                dest="test/images", top="images", include=("*.tif",), share=(k, 3)))
    return tuple(archives)


FAIR1M = Recipe(
    dataset="fair1m",
    page=FAIR1M_PAGE,
    variants=(Variant(name="v1.0", description="FAIR1M v1.0 image and label zips per split", fixture_dir="FAIR1M",
                      archives=_fair1m()),),
)

SARDET_PAGE = "https://github.com/zcablii/SARDet_100K"

SARDET100K = Recipe(
    dataset="sardet100k",
    page=SARDET_PAGE,
    variants=(Variant(
        name="release",
        description="SARDet_100K.zip (Annotations/ + JPEGImages/), or the Kaggle copy of it",
        fixture_dir="SARDet_100K",
        archives=(Archive(name="SARDet_100K.zip", aliases=("sardet-100k.zip", "archive.zip"),
                          url=(f"{SARDET_PAGE} (Baidu Disk, OneDrive, ModelScope wokaikaixinxin/SARDet_100K; "
                               "Kaggle greatbird/sardet-100k)"),
                          top="SARDet_100K", include=("Annotations/*.json", "JPEGImages/*"),
                          note="the archive name is assumed (the providers link folders, not one file); "
                               "the Kaggle CLI saves sardet-100k.zip, the browser archive.zip"),),
    ),),
)

UBC_PAGE = "https://github.com/AICyberTeam/UBC-dataset/tree/UBCv2"

UBCV2 = Recipe(
    dataset="ubcv2",
    page=UBC_PAGE,
    variants=(Variant(
        name="rgb-sar",
        description="the RGB+SAR pack (annotations/ + images/{train,val}/{rgb,sar|merge}/)",
        fixture_dir="UBCv2",
        archives=(Archive(name="UBCv2.zip", aliases=("UBCv2_RGB_SAR.zip",), url=f"{UBC_PAGE} (Baidu Drive only)",
                          top="UBCv2", include=("annotations/*.json", "images/*"),
                          note="name and nesting assumed (the pack is on Baidu Drive only; not confirmed)"),),
    ),),
)
