"""Archive recipe of AID (``rsbench data prepare``). Light: no numpy.

AID is linked from its project page (Baidu Pan / OneDrive) as one zip holding ``AID/<Class>/``;
the class folders go to the prepared root itself (the checker accepts ``AID/`` or its parent).
Copies saved without the top folder are accepted too. No checksum is published.
"""

from __future__ import annotations

from rsbench.data_prepare import Archive, Recipe, Variant

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
