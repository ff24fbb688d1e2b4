"""The crops the simulator sows, its land-cover codes, the CNN's classes and the class map's colours keep to one
list of crops, in one order."""

from farmcredit.outputs.styles import CLASS_COLOURS
from farmcredit.segmentation.card import CLASSES
from farmcredit.simulate.landscape import COVERS, CROP_WEIGHTS, CROPS, FALLOW
from farmcredit.simulate.phenology import CALENDARS
from farmcredit.simulate.render import LANDCOVER_CLASSES, OTHER_CLASSES, landcover_classes


def test_simulated_crops_are_the_cnns_crop_classes_in_its_order() -> None:
    """Training reads a sown crop's landcover.tif code as its index in CLASSES (segmentation/data.py); CALENDARS
    listed soybean before rice."""
    assert CLASSES[1:-1] == CROPS == tuple(CALENDARS)
    assert tuple(CROP_WEIGHTS) == (*CROPS, FALLOW)
    assert [LANDCOVER_CLASSES[crop] for crop in CROPS] == [CLASSES.index(crop) for crop in CROPS]


def test_every_cover_but_crop_has_a_land_cover_code() -> None:
    assert set(COVERS) - {"crop"} == {*OTHER_CLASSES, "track"} <= LANDCOVER_CLASSES.keys()


def test_a_crop_added_takes_a_land_cover_code_of_its_own() -> None:
    """render.py gave fallow 5 whatever CROPS held: with cotton added, cotton and fallow were both 5."""
    codes = landcover_classes((*CROPS, "cotton"))
    assert codes["cotton"] == len(CROPS) + 1
    named = sorted(code for name, code in codes.items() if name != "track")
    assert named == list(range(1, len(CROPS) + len(OTHER_CLASSES) + 2))


def test_the_class_map_has_a_colour_per_crop_class() -> None:
    """non_crop has NON_CROP_COLOUR; a crop class without its own colour would share another's (they cycle)."""
    assert len(CLASS_COLOURS) == len(CLASSES) - 1
