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
"""

from __future__ import annotations

from rsbench.data_prepare import Archive, Recipe, Variant

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
