"""Read parcel polygons from any vector format and validate them row by row.

File-level problems (not a vector file, no CRS, no ``parcel_id`` column) raise ``InputError``;
row-level problems become reason codes in the ``reasons`` column and never stop the run.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import sys
import unicodedata
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pyogrio.raw
import shapely
from pyogrio.errors import DataSourceError
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from farmcredit.china_maps import CHINA_RECTANGLE, DATUM_NAMES, DATUMS, in_china, to_wgs84, wgs84_region
from farmcredit.errors import InputError
from farmcredit.formats import check_vector_file
from farmcredit.locking import looked_up
from farmcredit.text import DECIMAL_COMMA, folded, some

logger = logging.getLogger(__name__)
# Integer columns with blanks read as nullable integers, not as floats that round ids beyond 2^53.
WHOLE_INTEGERS = {"types_mapper": {pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int32Dtype(),
                                   pa.int16(): pd.Int16Dtype()}.get}
# GeoPackage's srs_id -1 and 0: coordinates of no stated CRS, read as none.
UNDEFINED_CRS = ("Undefined Cartesian SRS", "Undefined geographic SRS")
# Invalid values quoted in the warning that flags them (the outputs keep the codes, not the text given).
QUOTED_VALUES = 5
# Parcel files read by GDAL's CSV driver, whose outlines are WKT text in a column named WKT (any case).
CSV_SUFFIXES = (".csv", ".tsv")

# A parcel smaller than this (m2) on the ground is no field but a stray click, or coordinates in other units than the
# file's CRS (PARCEL_TOO_SMALL): it is not measured, as a 10 m pixel cannot tell it, nor graded and lent on. A file
# whose every parcel is so small declares another CRS than its coordinates are in.
SPECK_M2 = 1.0
# A parcel whose outline spans more than this (m, the longer side of its bounding box in its UTM zone) is no field
# but a mistyped or misplaced vertex (PARCEL_TOO_LARGE): it is not measured, since its window of imagery would be as
# large (a vertex 100 km off: tens of GB). The largest fields anywhere (broadacre paddocks of Australia, Kazakhstan,
# Brazil's cerrado, 1,000 ha and more) run 2-4 km a side, a US section 1.6 km, a centre pivot 0.8 km; a Chinese state
# farm's fields, under 2 km. 5 km leaves such fields room, and holds a window to 500 px of 10 m pixels.
MAX_PARCEL_SPAN_M = 5_000.0
# An outline of more vertices than this is no drawn or walked field but a generated or corrupted one
# (TOO_MANY_VERTICES): it is not measured, since GEOS's validity checks and unions grow with the square of a spiky
# outline's vertices (a 40 m star of 80,000 took 10 s, of 1,000,000 minutes). Fields drawn on a map have tens to
# hundreds; a GPS walk logged once a second round a 4 km paddock, about 11,000; one vertex a metre round the largest
# outline read (MAX_PARCEL_SPAN_M a side), 20,000, finer than any 10 m pixel can tell.
MAX_PARCEL_VERTICES = 20_000
# A strip of an outline narrower than this (m) joining two of its fields is no field (PARTS_APART): the outline is
# closed, then each polygon opened (eroded then grown back by half this) before its fields' gaps are measured, so a
# strip drawn to join two fields into one polygon (a 1 m corridor between fields 300 m apart) splits it into its
# fields. The width under which a share of two outlines is a sliver (credit.overlap_sliver_m, about a phone GPS's
# error); a field's access strip (3-4 m) goes, its body stays.
MIN_FIELD_WIDTH_M = 5.0
# The opened pieces of a polygon are its fields only where one is at least this wide (twice its area over its
# perimeter: a strip's width, half a square's side): a field's body, the thin strips joining it to others, however
# long or zigzag, off. Pieces all narrower are a strip or terrace field whose width dips under MIN_FIELD_WIDTH_M: one
# narrow field, as is a polygon of its own under that width (a strip field drawn beside another).
MIN_BODY_WIDTH_M = 10.0
# Fields at least MIN_FIELD_WIDTH_M wide and of this area (m²) link to each other within parcels.max_part_gap_m: a
# field's bodies, terraces and strips of one holding; smaller or thinner ones (a lane drawn as a polygon of its own,
# blocks laid between two fields) join no groups of them, and lie apart where no chain of fields reaches them.
MIN_LINK_AREA_M2 = 400.0
# Fields at least MIN_FIELD_WIDTH_M wide, smaller ones too, link within this (m): terraces on risers, paddies parted
# by bunds and ditches, between a holding's larger fields; blocks laid between two fields must then lie this close.
MAX_HOP_M = 20.0
# A polygon or opened piece smaller than this (m², one 10 m pixel) is no field: specks laid between two fields (2 m
# squares every 80 m) do not chain them under parcels.max_part_gap_m.
MIN_FIELD_AREA_M2 = 100.0
# A UTM zone's scale is at least this (at its central meridian): its map's distances are at least the ground's times
# this, so an outline's extent there bounds its fields' gaps.
UTM_MIN_SCALE = 0.9996
# Codes of a parcel whose outline is kept for the map (the outputs draw it, an error) but not measured: no imagery is
# read over it, and it takes no part in windows, the output extent, overlaps or areas (``map_only``).
MAP_ONLY_CODES = frozenset({"PARCEL_TOO_LARGE", "PARCEL_TOO_SMALL", "TOO_MANY_VERTICES"})
# An outline whose area is under this share of its perimeter squared encloses no area: its vertices lie on one line,
# and float error in their coordinates (more so once projected) leaves it a sliver of a square millimetre, which read
# as a stray click (PARCEL_TOO_SMALL) is EMPTY_GEOMETRY. A square is 1/16, a 1 km by 1 cm strip 2.5e-6; three collinear
# points in degrees 1e-12.
FLAT_SHAPE = 1e-9
# Codes of a parcel whose outline cannot be used as read, warned once each (``_warn_unusable``): what its outline is,
# why, and what to do (GEOMETRY_REPAIRED, measured as repaired, is noted).
GEOMETRY_PROBLEMS = {
    "EMPTY_GEOMETRY": ("outlines are missing or empty, enclose no area or could not be read",
                       "no field can be measured from them", "redraw them"),
    "NOT_A_POLYGON": ("outlines are not polygons", "a point or line marks a place, not a field's area",
                      "draw each field's outline as a polygon"),
    "IMPOSSIBLE_COORDINATES": ("coordinates are off the globe in the file's CRS, or not numbers (NaN, infinite)",
                               "a vertex is likely mistyped, or the parcel in another CRS than the file's",
                               "check their vertices"),
    "GEOMETRY_REPAIRED": ("outlines crossed themselves, overlapped in their parts or were left open",
                          "they were repaired (overlaps taken once, rings closed)", "check their outlines"),
}
# A run warns when this share of its parcels or more lie wholly off the imagery: their CRS may be mislabelled.
OFF_IMAGERY_SHARE = 0.9
# WGS 84's semi-major axis (m). Parcels on a datum of another ellipsoid (Beijing 1954, Xian 1980) that PROJ knows no
# shift for are refused (_refuse_ballpark_datum); on one of this size (CGCS2000, ETRS89, GDA2020, NAD83: GRS 1980) the
# shift PROJ leaves out is within a metre or two, under a 10 m pixel.
WGS84_SEMI_MAJOR_M = 6_378_137.0
# Gauss-Kruger zone numbers (带号) Chinese surveys write before their eastings, by zone width (degrees): 6-degree zones
# 13-23 and 3-degree zones 25-45 span China's 75E-135E; an easting within its zone runs 500 km +- under 400 km.
GAUSS_KRUGER_ZONES = {6: range(13, 24), 3: range(25, 46)}
# Web Mercator's x (m) at longitude 180: metres within it, read as degrees, lie off the globe.
WEB_MERCATOR_HALF_WIDTH_M = 20_037_508.34
# Suffixes of GeoJSON files, whose coordinates are EPSG:4326 unless a 'crs' member GDAL reads says otherwise.
GEOJSON_SUFFIXES = (".geojson", ".json")
# Suffixes of parcel formats held in one file: a folder so named is no parcel file (a File Geodatabase, x.gdb, is a
# folder, and one copied in part is told GDAL's word).
SINGLE_FILE_SUFFIXES = (*GEOJSON_SUFFIXES, *CSV_SUFFIXES, ".gpkg", ".shp", ".parquet", ".geoparquet", ".fgb", ".kml",
                        ".kmz", ".gml", ".sqlite")

PARCEL_COLUMNS = ("parcel_id", "borrower_id", "declared_crop", "declared_area_ha", "declared_area_mu", "region")
# Shapefiles cut field names to 10 characters: accept the cut names too. declared_a stays declared_area_ha's (as it
# was before declared_area_mu was read); a Shapefile's area in mu goes in area_mu, a name it holds whole.
MU_SHORT_NAME = "area_mu"
_SHORT_NAMES = {**{name[:10]: name for name in PARCEL_COLUMNS if name != "declared_area_mu"},
                MU_SHORT_NAME: "declared_area_mu"}
# Where a warning tells which column areas in mu go in.
MU_COLUMN = (f"declared_area_mu (or {MU_SHORT_NAME}: a Shapefile cuts names to 10 characters, declared_area_mu to "
             "declared_a, read as declared_area_ha)")
# The Chinese unit of land a borrower declares in: 1 亩 (mu) = 1/15 ha.
MU_PER_HA = 15
# declared_area_ha values whose median is this many times the outlines' areas are likely areas in mu (15 times), over
# at least MIN_PARCELS_FOR_UNIT parcels declaring one, or half the file's: honest declarations run about 1 times, an
# overstating borrower's 2-3. Mu run 15 times only where the outlines are the land declared: outlines a third larger
# (margins, paths, ditches) make it 11, half as large 30. declared_area_mu values in this band's reciprocal (1/30 to
# 1/6 times, about 1/15) are likely hectares.
MU_RATIO_BAND = (6.0, 30.0)
# declared_area_ha values whose median is this many times the outlines' areas are likely acres (2.471 to the hectare):
# a file-wide median, as one borrower may overstate 2-3 times.
ACRE_RATIO_BAND = (2.2, 2.8)
HA_PER_ACRE = 0.4047
MIN_PARCELS_FOR_UNIT = 10
# Declared areas whose file-wide median is outside this many times the outlines' areas are likely in another unit:
# honest files run about 1 (outlines a third larger than the land declared 0.75, half as large 2), and a few
# over-declaring borrowers do not move a file's median.
DECLARED_RATIO_BAND = (0.5, 1.6)
# The land units borrowers declare in, in hectares each (low, high: a bigha is 0.13 ha in West Bengal, 0.25 in Bihar,
# 0.27 in Uttar Pradesh; a katha is Bangladesh's and West Bengal's 720 square feet), and the names a column may give
# them by (a Latin one as a whole word, e.g. not `percent`; Bangladesh's decimal, শতাংশ, is the cent). Brazil's
# alqueire is the paulista's 2.42 ha (São Paulo, Paraná, the South) to the mineiro's 4.84 (Minas Gerais, Goiás, Mato
# Grosso), 100 and 200 square braças of 2.2 m squared; the baiano's 9.68 ha is left out, as it would fit files a fifth
# of their outlines (tables of Brazil's agrarian measures, e.g. Embrapa's and INCRA's). Its tarefa runs 0.3025 ha
# (Sergipe, Alagoas: 25 braças square) to 0.4356 (Bahia: 30 braças square). Central America's manzana is 10,000 square
# varas of 0.8359 m, 0.6987 ha (Honduras, Nicaragua, El Salvador, Costa Rica); Argentina's manzana is a town block, no
# unit a farm declares in. The quadra (cuadra) is left out: 0.74-1.74 ha by country and Brazilian state. Zambia's and
# Malawi's lima is 0.25 ha (50 m by 50 m), as extension officers and out-grower schemes count fields.
LAND_UNITS_HA = {"mu": (1 / MU_PER_HA, 1 / MU_PER_HA), "acre": (HA_PER_ACRE, HA_PER_ACRE),
                 "guntha": (0.010117, 0.010117), "bigha": (0.13, 0.27), "kanal": (0.0506, 0.0506),
                 "marla": (0.00253, 0.00253), "cent": (0.004047, 0.004047), "katha": (0.0067, 0.0067),
                 "rai": (0.16, 0.16), "feddan": (0.42, 0.42), "are": (0.01, 0.01),
                 "alqueire": (2.42, 4.84), "tarefa": (0.3025, 0.4356), "manzana": (0.6987, 0.6987),
                 "lima": (0.25, 0.25), "m²": (0.0001, 0.0001)}
LAND_UNIT_NAMES = {"acre": ("acre", "acres", folded("एकड़"), "एकर", folded("একর"), "ekari"),
                   "guntha": ("guntha", "gunthas", "gunta", "guntas", "गुंठा"),
                   "bigha": ("bigha", "bighas", "बीघा", folded("বিঘা")),
                   "kanal": ("kanal", "kanals"), "marla": ("marla", "marlas"),
                   "cent": ("decimal", "decimals", "dec", "shotangsho", folded("শতাংশ")),
                   "katha": ("katha", "kathas", "kattha", "katthas", folded("কাঠা")),
                   "rai": ("rai",), "feddan": ("feddan", "feddans"), "are": ("are", "ares"),
                   "alqueire": ("alqueire", "alqueires"), "tarefa": ("tarefa", "tarefas"),
                   "manzana": ("manzana", "manzanas"), "lima": ("lima", "limas")}
# Units of a region, offered as fitting a file's ratio only where the config lends in a currency of it: the alqueire
# (2.42-4.84 ha) clamped to its range fits every ratio from 0.083 to 0.83, which in China or India is a share of a plot
# held jointly, not Brazil's unit; Paraguay's, Argentina's and Uruguay's Brazilian settlers declare in alqueires too.
# The bigha (0.13-0.27 ha) fits every ratio from 3.7 to 7.7 exactly, the lima's 4 too: a Zambian file of limas was
# told a bigha first; the bigha is India's, Nepal's and Bangladesh's, the rai Thailand's. South Asia's small units
# (guntha, kanal, marla, cent, katha) and Egypt's and Sudan's feddan are offered only in their currencies too: a
# Kenyan file 10-15 times its outlines was told the kanal, a Punjab unit, alone; the mu is China's.
REGIONAL_UNIT_CURRENCIES = {"alqueire": frozenset({"BRL", "PYG", "ARS", "UYU"}), "tarefa": frozenset({"BRL"}),
                            "manzana": frozenset({"NIO", "HNL", "GTQ", "CRC"}), "lima": frozenset({"ZMW", "MWK"}),
                            "bigha": frozenset({"INR", "NPR", "BDT"}), "rai": frozenset({"THB"}),
                            "mu": frozenset({"CNY"}), "guntha": frozenset({"INR"}),
                            "kanal": frozenset({"INR", "PKR"}), "marla": frozenset({"INR", "PKR"}),
                            "cent": frozenset({"INR", "BDT", "LKR"}), "katha": frozenset({"INR", "BDT", "NPR"}),
                            "feddan": frozenset({"EGP", "SDG"})}
# A unit's other name, as a message gives it (cent (decimal)).
LAND_UNIT_ALSO = {"cent": "decimal"}
# Words that give the unit only of a column otherwise named an area (area_ac, area_cents, area_alq, area_mz): alone, AC
# is an account in an Indian bank's file (loan_ac_no), per cent a share (irrigated_per_cent), MZ a place's code.
AREA_UNIT_ABBREVIATIONS = {"ac": "acre", "cent": "cent", "cents": "cent", "alq": "alqueire", "mz": "manzana"}
# A unit fits a file's median ratio where its size times the declared figures per hectare of outline is within this
# band: as MU_RATIO_BAND's 6-30 times for 15 mu to the hectare.
UNIT_FIT_BAND = (0.4, 2.0)
# What else declarations far from their outlines may be: a share declared of a plot held jointly, outlined whole.
JOINT_PLOT = "e.g. each of a whole plot held jointly, beside the share of it declared"
# A declared area typed with its unit, as a spreadsheet cell holds it (30亩, 1.2 亩, 0.5ha, 0.5 公顷): by column, the
# unit read off it; the other column's unit is not (0.11ha in declared_area_mu stays INVALID_DECLARED_AREA).
UNIT_SUFFIXES = {"declared_area_mu": re.compile(r"(.*?)\s*(亩|mu)", re.IGNORECASE),
                 "declared_area_ha": re.compile(r"(.*?)\s*(公顷|ha|hectares?)", re.IGNORECASE)}
# A column not read whose name holds one of these (folded) looks like a declared area: left unread, in silence, the
# parcels were assessed as declaring none, and over-declared ones approved.
# In the languages of the markets served (Chinese, Hindi/Marathi, Bengali, Spanish/Portuguese/French, Swahili): a
# name holding one of these parts, or one of these words (a short one may be part of another word: share, rainfall,
# percent), or one of LAND_UNIT_NAMES. Not জমি (land) alone: জমির দাগ নং is a plot's number.
AREA_NAME_PARTS = tuple(folded(part) for part in ("area", "área", "面积", "亩", "acre", "hectare", "hectárea",
                                                   "superficie", "hekta", "क्षेत्रफल", "रकबा", "हेक्टेयर", "हेक्टर",
                                                   "জমির পরিমাণ", "আয়তন", "হেক্টর"))
AREA_NAME_WORDS = frozenset({"mu", "ha", "eneo"})
# A column not read whose (folded) name holds one of these parts, or a word starting with one of these, looks like a
# declared crop (cultura, cultivo_principal, CropType, crop1, main_crop, 种植作物, फसल, ফসল, Swahili's zao): left
# unread, in silence, no parcel's crop was checked (no CROP_MISMATCH), a mismatching one approved. Latin ones at a
# word's start, not NOT_CROP_STARTS: agricultura_familiar, cropping_system, CroplandClass (one word once folded) and
# cultural_group are none.
CROP_NAME_PARTS = ("作物", "फसल", "ফসল")
CROP_NAME_STARTS = ("crop", "cultura", "cultivo", "culture", "zao", "mazao")
NOT_CROP_STARTS = ("cropping", "cropland", "cultural")
# ...and its values are mostly names: letters of any script with their marks (soja, 小麦, गेहूँ), words joined by these
# (winter wheat, pak-choi, soja/milho, 小麦、玉米), a bracket's note aside (wheat (HD-2967)), not a year or a season
# (2024-25) nor a code (W1); and mostly not a yes/no flag (crop_insurance).
CROP_NAME_JOINERS = frozenset(" '’-/,;&+、，")
BRACKETED = re.compile(r"\s*[(（][^)）]*[)）]")
FLAG_VALUES = frozenset({"yes", "no", "y", "n", "sim", "não", "nao", "si", "sí", "oui", "non", "true", "false", "t",
                         "f", "ndiyo", "hapana", "是", "否", "有", "无", "हाँ", "हां", "नहीं", "হ্যাঁ", "না"})
# ...a borrower id (Brazil's CPF, a cooperative's cooperado or sócio, productor, cliente, farmer_id, member, 借款人,
# 农户, 户主, 承包方, किसान, কৃষক), its values repeated across rows: left unread, in silence, each parcel was lent as
# its own borrower, the borrower cap, minimum loan and referrals applied per parcel (short Latin ones as whole words:
# cpf, dni, member, not members_count).
BORROWER_NAME_PARTS = ("borrower", "cooperado", "productor", "produtor", "cliente", "customer", "farmer", "借款人",
                       "农户", "户主", "承包方", "किसान", "কৃষক")
BORROWER_NAME_WORDS = frozenset({"cpf", "cnpj", "cuit", "dni", "socio", "sócio", "member", "client", "mkulima"})
# ...and its values are ids: more distinct than a handful of labels (client_segment's), at least this many (or half the
# rows of a small file) and this share of the rows, and not years (member_since); named as an id (cpf, farmer_id,
# member_no: one of ID_NAME_WORDS first or last, next to a word naming the borrower, or CPF's kind alone; not
# farmer_zip_code nor member_no_of_plots), any value repeated across rows will do (4 farmers of 15 plots each).
BORROWER_IDS_MIN = 10
BORROWER_IDS_SHARE = 0.05
ID_NAME_WORDS = frozenset({"id", "ids", "no", "nr", "num", "number", "code"})
# A column so named holds national identity numbers (cpf, dni, id_card, 身份证号, aadhaar_no, resident_id): named so,
# or mostly passing their check (``_national_id``), it is told to hold them, not proposed as the borrower id (README:
# Personal data); words whole, parts anywhere in the name with its separators off (memberaadhaar, ID Card: idcard),
# those that end other words' (president_id, rfid_card, international_id) only from a word's start.
NATIONAL_ID_WORDS = frozenset({"cpf", "cnpj", "cuit", "cuil", "dni", "curp", "nid", "nin"})
NATIONAL_ID_PARTS = ("identitycard", "identitynumber", "cedula", "cédula", "aadhaar", "aadhar", "身份证", "आधार", "আধার")
NATIONAL_ID_STARTS = ("idcard", "residentid", "nationalid")
# A column name's camelCase words, told apart before it is folded (farmerIdCard: farmer_Id_Card, IDCard: ID_Card).
CAMEL_CASE_WORDS = re.compile(r"(?<=[a-z\d])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
# ...and one naming a farmer, or giving a phone or address (farmer_name, 户主姓名, nome_cooperado, farmer_phone) is
# never proposed: names are not unique, and farmers sharing one would be lent as one borrower.
PERSONAL_NAME_PARTS = ("name", "nome", "nombre", "phone", "telefon", "teléfono", "celular", "mobile", "address",
                       "endereco", "endereço", "direccion", "dirección", "adresse", "姓名", "名字", "电话", "手机",
                       "地址", "住址", "नाम", "फोन", "फ़ोन", "मोबाइल", "पता", "নাম", "ফোন", "মোবাইল", "ঠিকানা")
PERSONAL_NAME_WORDS = frozenset({"nom", "tel", "cel", "jina", "simu", "anwani"})
# Aadhaar's check (Verhoeff's, over the dihedral group D5): its multiplication table, the permutation of a digit by
# its place from the right (mod 8).
VERHOEFF_MULTIPLY = ((0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5), (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
                     (3, 4, 0, 1, 2, 8, 9, 5, 6, 7), (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
                     (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3), (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
                     (9, 8, 7, 6, 5, 4, 3, 2, 1, 0))
VERHOEFF_PERMUTE = ((0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4), (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
                    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7), (9, 4, 5, 3, 1, 2, 8, 7, 0, 6), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
                    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8))
# An Aadhaar number (12 digits, not starting 0 or 1; in groups of 4 as printed) and a CPF (11 digits, 123.456.789-09
# as printed), as a spreadsheet may hold them.
AADHAAR = re.compile(r"[2-9]\d{3} ?\d{4} ?\d{4}")
CPF = re.compile(r"\d{3}\.?\d{3}\.?\d{3}-?\d{2}")
YEAR = re.compile(r"(19|20)\d\d(\.0)?")
# A value an area column gives: a number, or one typed with its unit (2.5, 30亩, 1.2 bigha, 1,200 m²). A column named
# like an area whose values are mostly not so (eneo, region in Swahili: Nakuru) is none.
NUMBER_WITH_UNIT = re.compile(r"[+-]?\d[\d.,]*\s*\D{0,12}")
# The values of such a column read to tell so: enough, and cheap on a file of 100,000 parcels.
AREA_VALUES_READ = 1000
# Latin letters (a-z, with accents: área), which a column name's words are split from other scripts' (承包地ha).
LATIN_LETTERS = "a-z\u00c0-\u024f"
# ...unless it holds one of these words (area_code, area_name: a place's) or starts so: Esri's outline areas
# (ArcGIS's Shape_Area, a geodatabase's st_area(shape), as exported); a Shapefile's AREA alone is its outline's too.
NOT_AREA_WORDS = frozenset({"code", "name", "id"})
OUTLINE_AREA_PREFIXES = ("shape_", "st_area")
# An id as Excel shows, and saves, a number of 12 digits or more typed into a General cell (4.10102E+17): all but its
# first few digits are lost, and the ids of many farmers read as one. (farmcredit.spreadsheet quotes, in what it
# writes, every text Excel would so change; an id read is refused only in the form Excel writes.)
EXCEL_SCIENTIFIC = re.compile(r"\d(\.\d+)?E\+\d+", re.IGNORECASE)
# A number of 16 to 19 digits ending so has likely passed through an Excel number cell, which keeps 15 digits and
# zeroes the rest (an 18-digit ID-card number's last three), unless it is an 18-digit resident ID number whose check
# character holds (RESIDENT_ID_WEIGHTS), as a real one's may end in 000 (sequence number ..00, check character 0).
EXCEL_ZEROED = re.compile(r"\d{13,16}000")
# GB 11643's check of a resident ID number (ISO 7064 MOD 11-2): its 17 digits weighted 2^(17-k) mod 11, their sum
# mod 11 indexing the 18th character.
RESIDENT_ID_WEIGHTS = tuple(2 ** (17 - k) % 11 for k in range(17))
RESIDENT_ID_CHECK = "10X98765432"
# Cyrillic and Greek capitals an id's reader takes for the Latin ones beside them (В0150 for B0150), each with its
# small letter as that Latin capital's small one (so that an id's key keeps ignoring case: Greek ν, read as v, is
# taken as Ν's n): a small table of the letters of ids, not Unicode TR39's full confusables.
LOOK_ALIKE_LETTERS = dict(zip("АВЕКМНОРСТУХІЈЅ" "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEKMHOPCTYXIJS" "ABEZHIKMNOPTYX", strict=True))
LOOK_ALIKE_LETTERS |= {letter.lower(): latin.lower() for letter, latin in LOOK_ALIKE_LETTERS.items()}


def read_parcels(path: str | Path, crs: str | None = None, layer: str | None = None,
                 currency: str | None = None, datum: str = "wgs84") -> gpd.GeoDataFrame:
    """Read a parcel file (GeoJSON, GeoPackage, Shapefile, GeoParquet, FlatGeobuf, KML).

    Args:
        path: the vector file.
        crs: CRS to assume when the file declares none (e.g. ``"EPSG:4326"``); without it, EPSG:4326 for a
            ``datum`` other than "wgs84".
        layer: the layer to read from a file of several; without it, the file's one layer, or the one layer of
            several with a ``parcel_id`` column and polygons.
        currency: the config's ``credit.currency``: the regional land units (``REGIONAL_UNIT_CURRENCIES``) a file's
            declared areas may be told to be in are those of its region; None, none of them.
        datum: how the file's longitude and latitude were drawn (``china_maps.DATUMS``): ``"gcj02"`` or ``"bd09"`` for
            outlines drawn on Chinese web maps, moved back to WGS 84 here (``parcels_from_frame``).

    Returns:
        The validated parcels (see ``validate_parcels``), in the file's CRS (WGS 84 positions, whatever ``datum``);
        ``attrs["layer"]`` names the layer read from a file of several.

    Raises:
        InputError: missing, empty (0 bytes), a folder, a path that cannot be looked up (``looked_up``) or unreadable
            file (a Shapefile without its .dbf), no CRS, ``crs`` not a CRS, no
            ``parcel_id`` column, no parcel a polygon that can be measured (``_refuse_no_polygon``), no parcel with
            coordinates possible in the file's CRS, every parcel under
            ``SPECK_M2`` in it, a datum PROJ cannot shift to WGS 84, ``datum`` unknown or given for a CRS with no
            longitude and latitude (``parcels_from_frame``), ``layer`` not in the file, or several layers to choose
            from.
    """
    path = looked_up(Path(path), "parcel file")
    if not path.exists():
        raise InputError(f"parcel file {path} does not exist")
    if path.is_file() and path.stat().st_size == 0:  # GDAL would hint at naming its driver
        raise InputError(f"parcel file {path} is empty (0 bytes): is it still being copied? Give it once written")
    _refuse_shapefile_without_dbf(path)
    read_at = check_vector_file(path, "parcel file")
    parquet = path.suffix.lower() in (".parquet", ".geoparquet")
    if parquet and layer is not None:
        raise InputError(f"parcel file {path} is GeoParquet, which has no layers; leave out --parcels-layer "
                         "(parcels_layer= in Python)")
    try:
        with warnings.catch_warnings():
            # pyogrio's, of a file with M values: they are dropped here (validate_parcels), whatever pyogrio says.
            warnings.filterwarnings("ignore", r"Measured \(M\) geometry types are not supported")
            # shapely's, of decoding a NaN vertex: its parcel is IMPOSSIBLE_COORDINATES (validate_parcels).
            warnings.filterwarnings("ignore", "invalid value encountered in from_wkb", RuntimeWarning)
            # GDAL's, quoting a CSV's WKT cell it cannot parse, not its row: warned by parcel id (_warn_unread_wkt).
            warnings.filterwarnings("ignore", "Ignoring invalid WKT", RuntimeWarning)
            # GDAL's and pyogrio's, of a GeoJSON geometry they cannot read (a type mistyped, coordinates as text): its
            # parcel is EMPTY_GEOMETRY, warned by parcel id (validate_parcels).
            warnings.filterwarnings("ignore", "Unsupported geometry type detected", RuntimeWarning)
            warnings.filterwarnings("ignore", r"OGRGeoJSONRead\w*\(\)", RuntimeWarning)
            # pyogrio's, of a column GDAL types JSON whose values are not all JSON: the parcel columns are read as
            # the file writes them (_json_as_written).
            warnings.filterwarnings("ignore", "Could not parse column .* as JSON")
            layer = None if parquet else _parcel_layer(path, layer, read_at)
            frame, closed = _read_frame(read_at, layer, parquet)
            if not parquet:
                frame = _json_as_written(frame, read_at, layer)
    except (DataSourceError, UnicodeDecodeError) as exc:
        # pyogrio's, of column names Arrow cannot decode: raised as is for a CSV's, wrapped for a Shapefile's.
        if isinstance(undecoded := exc if isinstance(exc, UnicodeDecodeError) else exc.__cause__, UnicodeDecodeError):
            raise _not_utf8(path, f"a column name ({undecoded.object!r})", undecoded) from exc
        raise _unreadable(path, exc) from exc
    except (ValueError, OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from exc
    if not isinstance(frame, gpd.GeoDataFrame):
        raise InputError(f"parcel file {path} has no geometry column: parcels must be polygons. A table needs each "
                         "outline as WKT text in a column named WKT (points as longitude and latitude columns are no "
                         "outline), saved as \"CSV UTF-8 (逗号分隔)\" (.csv): an Excel workbook (.xlsx) is not read")
    _check_utf8(path, frame)
    source = f"parcel file {path}" + (f" (layer {layer})" if layer is not None else "")
    frame, closed, file_rows = _without_empty_rows(frame, closed, source)
    parcels = parcels_from_frame(frame, crs, source, closed, suffix=path.suffix.lower(), file_rows=file_rows,
                                 currency=currency, datum=datum)
    if path.suffix.lower() in CSV_SUFFIXES:
        _warn_unread_wkt(frame, parcels["parcel_id"], str(path))
    parcels.attrs["layer"] = layer
    return parcels


def _without_empty_rows(frame: gpd.GeoDataFrame, closed: np.ndarray, source: str
                        ) -> tuple[gpd.GeoDataFrame, np.ndarray, np.ndarray]:
    """``frame`` and ``closed`` (per row, ``_read_frame``) without the rows whose every cell and outline is empty, as
    a spreadsheet saves rows once used (Excel's trailing ``,,,,``): each read as a parcel without an id, outline or
    borrower, a borrower of its own in the results; and each row kept's number in the file (from 1, the header not
    counted), which messages and ``row-N`` stand-in ids give. One warning (the run shows no info lines) gives their
    count and first rows."""
    cells = frame.drop(columns=frame.geometry.name)
    blank = cells.isna() | cells.astype("string").apply(lambda column: column.str.strip().eq("")).fillna(True)
    empty = blank.all(axis=1).to_numpy() & ~usable_geometries(frame.geometry.to_numpy())
    file_rows = np.arange(1, len(frame) + 1)
    if not empty.any():
        return frame, closed, file_rows
    rows = [str(row) for row in file_rows[empty]]
    logger.warning("%s: %d rows hold nothing, every cell and the outline empty (rows %s), as a spreadsheet leaves rows "
                   "once used; they are left out", source, len(rows), some(rows))
    return frame[~empty].reset_index(drop=True), closed[~empty], file_rows[~empty]


def _unreadable(path: Path, exc: Exception) -> InputError:
    """The error of a parcel file GDAL could not read: a folder named as a single file (``SINGLE_FILE_SUFFIXES``) said
    so, not GDAL's hint to prefix the path with a driver's name."""
    if path.is_dir() and path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        return InputError(f"parcel file {path} is a folder, not a vector file; give the parcel file itself")
    return InputError(f"parcel file {path} is not a readable vector file: {exc}")


def _refuse_shapefile_without_dbf(path: Path) -> None:
    """A Shapefile copied without its .dbf reads as outlines with no column at all: say the .dbf is missing, not that
    ``parcel_id`` is.

    Raises:
        InputError: ``path`` is a .shp with no .dbf of its name beside it (any case).
    """
    dbf = f"{path.stem}.dbf"
    if path.suffix.lower() == ".shp" and not any(other.name.lower() == dbf.lower() for other in path.parent.iterdir()):
        raise InputError(f"parcel file {path}: {dbf} is missing: a Shapefile's attributes, parcel_id included, are in "
                         "its .dbf; copy the .shp, .shx, .dbf and .prj together")


def parcels_from_frame(frame: gpd.GeoDataFrame, crs: str | None = None,
                       source: str = "the parcels' GeoDataFrame", closed: np.ndarray | None = None,
                       suffix: str = "", file_rows: np.ndarray | None = None,
                       currency: str | None = None, datum: str = "wgs84") -> gpd.GeoDataFrame:
    """Parcels read (``read_parcels``) or given as a GeoDataFrame, checked as a file's are.

    Args:
        crs: CRS to assume when ``frame`` declares none; without it, EPSG:4326 for a ``datum`` other than "wgs84"
            (a Chinese web map's longitude and latitude, as a CSV of WKT exports them).
        closed: per row, True where the file's outline had to be closed to be read (``_read_frame``).
        suffix: the suffix of the file ``frame`` was read from (lower case, ``.shp``), "" for none.
        file_rows: per row, its number in the file (from 1, the header not counted) before blank rows were left out
            (``_without_empty_rows``); None: 1 to len(frame).
        currency, datum: as ``read_parcels`` takes them.

    Raises:
        InputError: no parcels, no CRS, ``crs`` not a CRS, no CRS and coordinates no longitude and latitude under
            ``datum`` (``_refuse_projected_as_lonlat``), a datum PROJ cannot shift to WGS 84
            (``_refuse_ballpark_datum``), ``datum`` unknown or given for a CRS with no longitude and latitude
            (``_from_web_map``), or what ``validate_parcels`` refuses.
    """
    if crs is not None:
        try:
            crs = CRS.from_user_input(crs)
        except CRSError as exc:
            raise InputError(f"--parcels-crs {crs!r} (parcels_crs= in Python) is not a coordinate reference system: "
                             f"{exc}") from exc
    if len(frame) == 0:
        raise InputError(f"{source} contains no parcels")
    if frame.crs is not None and frame.crs.name in UNDEFINED_CRS:
        frame = frame.set_crs(None, allow_override=True)
    if frame.crs is None and crs is None and datum != "wgs84":
        _refuse_projected_as_lonlat(frame.geometry.to_numpy(), datum, source)
        crs = CRS.from_epsg(4326)  # a Chinese web map's export is longitude and latitude, whatever it declares
    if frame.crs is None:
        if crs is None:
            raise InputError(f"{source} declares no coordinate reference system; add one (e.g. a .prj) or pass "
                             "--parcels-crs EPSG:XXXX (parcels_crs= in Python)")
        frame = frame.set_crs(crs)
    elif crs is not None and crs != frame.crs:
        logger.warning("%s declares its coordinate reference system (%s): --parcels-crs %s (parcels_crs= in Python) is "
                       "ignored", source,
                       frame.crs.to_string(), crs.to_string())
    frame = _from_web_map(frame, datum, source)
    parcels = validate_parcels(frame, source=source.removeprefix("parcel file "), closed=closed, suffix=suffix,
                               file_rows=file_rows, currency=currency)
    _refuse_ballpark_datum(parcels, source)
    return parcels


def _refuse_projected_as_lonlat(geoms: np.ndarray, datum: str, source: str) -> None:
    """Refuse a file that declares no CRS, read as longitude and latitude (EPSG:4326) because ``datum`` is given, whose
    every outline with coordinates lies off the range of longitude and latitude: metres of a projected CRS, which
    ``--parcels-crs`` names (the datum is undone in its longitude and latitude).

    Raises:
        InputError: naming the assumption, a vertex, and --parcels-crs as the fix.
    """
    bounds = shapely.bounds(geoms)
    finite = np.isfinite(bounds).all(axis=1)
    lonlat = finite & (bounds[:, 0] >= -180) & (bounds[:, 2] <= 180) & (bounds[:, 1] >= -90) & (bounds[:, 3] <= 90)
    if lonlat.any() or not finite.any():
        return
    x, y = shapely.get_coordinates(geoms[np.argmax(finite)])[0]
    raise InputError(f"{source} declares no coordinate reference system, so --parcels-datum {datum} (parcels_datum= "
                     "in Python) took its coordinates as longitude and latitude (EPSG:4326), as Chinese web maps "
                     f"export them, but no parcel's are (e.g. {x:g}, {y:g}: metres, say, of a Gauss-Kruger or UTM "
                     "zone): give the CRS they are in with --parcels-crs (parcels_crs= in Python; EPSG:4547 for "
                     "CGCS2000's zone at 114 E, say) and keep --parcels-datum")


def _from_web_map(frame: gpd.GeoDataFrame, datum: str, source: str) -> gpd.GeoDataFrame:
    """``frame`` with outlines drawn on a Chinese web map (``datum`` "gcj02" or "bd09") moved to where they lie in
    WGS 84 (``china_maps.to_wgs84``), in ``frame``'s CRS; as it is for "wgs84". Outlines reprojected since they were
    drawn (ogr2ogr to a Gauss-Kruger CRS, QGIS on the maps' Web Mercator tiles) keep the offset: they are moved in
    their CRS's own longitude and latitude (``CRS.geodetic_crs``) and projected back. Warns when no parcel lies in
    the rectangle where those maps move positions, and of parcels in it but surely outside mainland China
    (``china_maps.WGS84_REGIONS``), which the maps show in WGS 84.

    Raises:
        InputError: ``datum`` unknown, or given for a CRS with no longitude and latitude (an engineering CRS).
    """
    if datum not in DATUMS:
        raise InputError(f"--parcels-datum {datum!r} (parcels_datum= in Python) is not one of {', '.join(DATUMS)}")
    if datum == "wgs84":
        return frame
    geographic = frame.crs if frame.crs.is_geographic else frame.crs.geodetic_crs
    if geographic is None:
        raise InputError(f"{source} is in {frame.crs.to_string()}, which has no longitude and latitude to undo "
                         f"--parcels-datum {datum} (parcels_datum= in Python) in: reproject it to EPSG:4490 or "
                         "EPSG:4326 and keep --parcels-datum")
    lonlat = frame.geometry.to_crs(geographic).to_numpy()  # as it is where ``frame`` is in longitude and latitude
    bounds = shapely.bounds(lonlat)
    if not in_china(bounds[:, 0], bounds[:, 1]).any():
        logger.warning("%s: no parcel lies in the rectangle the published %s formulas apply to (China and its "
                       "neighbours: %s), the only place those maps move positions, so --parcels-datum %s "
                       "(parcels_datum= in Python) moved none", source, DATUM_NAMES[datum], CHINA_RECTANGLE, datum)
    region = wgs84_region((bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2)
    if (abroad := region != "").any():
        logger.warning("%s: %d parcels lie outside mainland China (in %s), where %s maps show WGS 84, but inside the "
                       "rectangle the published formulas move positions in, so --parcels-datum %s (parcels_datum= in "
                       "Python) moved them hundreds of metres off their fields; leave it out for parcels outside "
                       "mainland China", source, abroad.sum(), ", ".join(sorted(set(region[abroad]))),
                       DATUM_NAMES[datum], datum)
    moved = gpd.GeoSeries(to_wgs84(lonlat, datum), index=frame.index, crs=geographic)
    return frame.set_geometry(moved.to_crs(frame.crs), crs=frame.crs)


def _refuse_ballpark_datum(parcels: gpd.GeoDataFrame, source: str) -> None:
    """Refuse parcels on a datum of another ellipsoid than WGS 84's that PROJ knows no shift from to WGS 84 where they
    lie: it falls back to a "ballpark" offset that shifts nothing, and they would sit tens of metres off the imagery
    (Beijing 1954 in central China: about 50 m). A datum with a Helmert or grid transformation there, or given one
    (+towgs84, a WKT's TOWGS84), is shifted by it.

    Raises:
        InputError: naming the CRS and its datum, and how to give the parcels in WGS 84 or CGCS2000.
    """
    crs = parcels.crs
    horizontal = crs.sub_crs_list[0] if crs is not None and crs.is_compound else crs
    if horizontal is None or horizontal.ellipsoid is None or \
            abs(horizontal.ellipsoid.semi_major_metre - WGS84_SEMI_MAJOR_M) <= 1:
        return
    geoms = parcels.geometry.to_numpy()
    placed = geoms[usable_geometries(geoms)]
    if placed.size == 0:
        return
    point = shapely.point_on_surface(placed[0])
    to_wgs84 = Transformer.from_crs(horizontal, "EPSG:4326", always_xy=True)
    to_wgs84.transform(point.x, point.y, errcheck=False)
    # PROJ's one operation between the CRSs; else the one it chose, of several, for where the parcels lie.
    steps = to_wgs84.operations or to_wgs84.get_last_used_operation().operations or ()
    if not any(step.has_ballpark_transformation for step in steps):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pyproj's, that a PROJ string loses what WKT holds
        as_proj = horizontal.to_proj4().replace(" +no_defs", "").replace(" +type=crs", "")
    raise InputError(
        f"{source}: its coordinate reference system {horizontal.to_string()} ({horizontal.name}) is on the "
        f"{horizontal.datum.name} datum, and PROJ knows no datum shift from it to WGS 84 here: it would shift the "
        "parcels by nothing, leaving them tens of metres off the imagery and its 10 m pixels. Reproject them to "
        "CGCS2000 (EPSG:4490, or its Gauss-Kruger CRSs EPSG:4491-4554) or WGS 84 with your survey's transformation "
        "parameters (the 7-parameter Helmert your surveyor gives), e.g. ogr2ogr -s_srs "
        f'"{as_proj} +towgs84=DX,DY,DZ,RX,RY,RZ,DS" -t_srs EPSG:4490 fixed.gpkg FILE; or give them as surveyed in '
        "CGCS2000 or WGS 84"
    )


def _read_frame(path: Path | str, layer: str | None, parquet: bool, arrow: bool = True
                ) -> tuple[gpd.GeoDataFrame | pd.DataFrame, np.ndarray]:
    """The file's rows, and per row whether its outline's rings had to be closed to be read.

    A ring left open (hand-written GeoJSON, a phone's KML, WKB built by hand) does not decode in GEOS: the whole file
    would fail for it. Such outlines are decoded closed (``on_invalid="fix"``), their rows ``GEOMETRY_REPAIRED``.
    Curves (CurvePolygon, MultiSurface: ArcGIS, FME, QGIS) do not decode in GEOS either: a file holding any is read
    without Arrow (``arrow=False``), whose reader linearises them as ``ogr2ogr`` does; integer columns with blanks
    then read as floats (``_id_text`` takes their whole numbers as integers).
    """
    options = ({"layer": layer, "use_arrow": True, "arrow_to_pandas_kwargs": WHOLE_INTEGERS} if arrow
               else {"layer": layer, "use_arrow": False})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Non closed ring detected")  # GDAL's, of what is flagged here
        try:
            try:
                frame = (gpd.read_parquet(path, to_pandas_kwargs=WHOLE_INTEGERS) if parquet
                         else gpd.read_file(path, **options))
            except shapely.errors.GEOSException:
                return _closed_frame(path, layer, parquet, options)
        except NotImplementedError as exc:  # shapely's "Nonlinear geometry types are not currently supported"
            if parquet or not arrow:
                raise ValueError(f"its geometry cannot be read ({exc})") from exc
            return _read_frame(path, layer, parquet, arrow=False)
    return frame, np.zeros(len(frame), dtype=bool)


def _json_as_written(frame: pd.DataFrame, path: Path | str, layer: str | None) -> pd.DataFrame:
    """``frame`` with its ``PARCEL_COLUMNS`` that GDAL types JSON (a GeoJSON column holding a JSON number beside
    text: ``"3.10"`` and ``5``) as the file writes them: pyogrio parses every value of such a column as JSON, "3.10"
    becoming 3.1 (one id with "3.1"), "1E3" 1000, "NaN" and "null" no id, "true" True."""
    info = pyogrio.read_info(path, layer=layer)
    as_json = [str(c) for c, subtype in zip(info["fields"], info["ogr_subtypes"], strict=True)
               if subtype == "OFSTJSON" and _column_name(c) in PARCEL_COLUMNS and c in frame.columns]
    if not as_json:
        return frame
    meta, _, _, values = pyogrio.raw.read(path, layer=layer, columns=as_json, read_geometry=False)
    return frame.assign(**{str(c): pd.array(v, dtype="string") for c, v in zip(meta["fields"], values, strict=True)})


def _closed_frame(path: Path | str, layer: str | None, parquet: bool, options: dict
                  ) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """``_read_frame`` of a file whose outlines do not all decode: each decoded closed, and which were."""
    if parquet:
        table = pq.read_table(path)
        geo = json.loads(table.schema.metadata[b"geo"])
        name = geo["primary_column"]
        declared = geo["columns"][name]  # GeoParquet: no "crs" key is OGC:CRS84; null, unknown
        crs = CRS.from_json_dict(declared["crs"]) if declared.get("crs") else None if "crs" in declared else "OGC:CRS84"
        wkb = table.column(name).to_numpy(zero_copy_only=False)
        frame = gpd.GeoDataFrame(table.drop_columns([name]).to_pandas(**WHOLE_INTEGERS),
                                 geometry=shapely.from_wkb(wkb, on_invalid="fix"), crs=crs)
    else:
        frame = gpd.read_file(path, on_invalid="fix", **options)
        wkb = pyogrio.raw.read(path, layer=layer, columns=[])[2]  # read without Arrow: curves linearised
    return frame, pd.notna(wkb) & shapely.is_missing(shapely.from_wkb(wkb, on_invalid="ignore"))


def _check_utf8(path: Path, frame: pd.DataFrame) -> None:
    """Text read from a file that does not say its encoding is taken as UTF-8: GBK text (a Shapefile without a .cpg,
    or whose .cpg GDAL does not know, as "ANSI 936"; a CSV saved by Excel on Chinese Windows) is not.

    Raises:
        InputError: naming the column, and how to say the encoding.
    """
    for column in [c for c in frame.columns if isinstance(frame[c].dtype, pd.StringDtype)]:
        try:
            pa.array(frame[column]).validate(full=True)
        except pa.ArrowInvalid as exc:
            raise _not_utf8(path, f"column {column}", exc) from exc


def _warn_unread_wkt(frame: gpd.GeoDataFrame, parcel_id: pd.Series, source: str) -> None:
    """Warn of a CSV's rows whose WKT cell holds text that is no geometry GDAL can parse (a polygon cut short, say),
    naming the column and the first ``QUOTED_VALUES`` parcel ids (``parcel_id``, by row): they read as none, and are
    flagged EMPTY_GEOMETRY."""
    column = next((c for c in frame.columns if str(c).lower() == "wkt"), None)
    if column is None:
        return
    given = frame[column].astype("string").str.strip().fillna("").ne("").to_numpy()
    if rows := np.flatnonzero(given & shapely.is_missing(frame.geometry.to_numpy())).tolist():
        logger.warning("%s: %d parcels' outlines in column %s are not WKT that can be read (%s%s); they are flagged "
                       "EMPTY_GEOMETRY; write each as a whole polygon, e.g. POLYGON ((x1 y1, x2 y2, x3 y3, x1 y1))",
                       source, len(rows), column, ", ".join(parcel_id.iloc[rows[:QUOTED_VALUES]]),
                       ", ..." if len(rows) > QUOTED_VALUES else "")


def _not_utf8(path: Path, what: str, why: Exception) -> InputError:
    """The error for ``what`` (a column, a column name) of ``path`` not being UTF-8 text, saying how to name the
    file's encoding: a CSV (GDAL's CSV driver) has no .cpg to name it in, as a Shapefile has; a Shapefile's .cpg
    beside it names one GDAL does not know (ANSI 936) or not the text's (UTF-8)."""
    cpg = next((other for other in path.parent.glob("*") if other.name.lower() == f"{path.stem}.cpg".lower()), None)
    if path.suffix.lower() in CSV_SUFFIXES:
        how = 'save it as UTF-8 (Excel on Chinese Windows saves GBK: choose "CSV UTF-8 (逗号分隔)(*.csv)")'
    elif cpg is not None:
        said = cpg.read_text(encoding="ascii", errors="replace").strip()
        how = (f"its {cpg.name} says {said!r}, which does not read it (not the encoding it was saved in, or one GDAL "
               f"does not know): replace what {cpg.name} says with that encoding (e.g. GBK, for text saved on Chinese "
               "Windows), or save the file as UTF-8 (a GeoPackage is)")
    else:
        how = ("for a Shapefile, put its encoding in a .cpg file beside it (e.g. GBK, for text saved on Chinese "
               "Windows), or save the file as UTF-8 (a GeoPackage is)")
    return InputError(f"parcel file {path}: {what} is not UTF-8 text ({why}); {how}")


def _parcel_layer(path: Path, asked: str | None, read_at: Path | str) -> str | None:
    """The layer to read of ``path`` (GDAL reading it at ``read_at``, ``check_vector_file``'s): ``asked``, checked;
    else None for a file of one layer, or the one layer of several with a ``parcel_id`` column and polygons (or
    geometry of unknown type, as KML's).

    Raises:
        InputError: ``asked`` is not a layer of the file, or no layer or several could be the parcels.
    """
    layers = [(str(name), str(kind)) for name, kind in pyogrio.list_layers(read_at)]
    names = [name for name, _ in layers]
    if asked is not None:
        if asked not in names:
            raise InputError(f"parcel file {path} has no layer {asked!r} (its layers: {', '.join(names)})")
        return asked
    if len(layers) == 1:
        return None
    infos = {name: pyogrio.read_info(read_at, layer=name) for name in names}
    why_not = {name: "no parcel_id" if "parcel_id" not in map(_column_name, infos[name]["fields"])
               else "not polygons" if not ("Polygon" in kind or kind == "Unknown") else "" for name, kind in layers}
    candidates = [name for name in names if not why_not[name]]
    if len(candidates) == 1:
        logger.info("%s: reading layer %s, the one of its %d layers with parcel_id and polygons", path,
                    candidates[0], len(layers))
        return candidates[0]
    described = "; ".join(f"{name} ({infos[name]['features']} features, {kind}"
                          f"{f', {why_not[name]}' if why_not[name] else ''})" for name, kind in layers)
    if not candidates:
        raise InputError(f"parcel file {path} has {len(layers)} layers ({described}), and none holds polygons with a "
                         "parcel_id column: give the parcels' layer a parcel_id column, then name it with "
                         "--parcels-layer NAME (parcels_layer= in Python)")
    raise InputError(f"parcel file {path} has {len(layers)} layers ({described}): choose one with --parcels-layer "
                     "NAME (parcels_layer= in Python); to assess several, merge them into one first")


def validate_parcels(frame: gpd.GeoDataFrame, source: str = "parcels", closed: np.ndarray | None = None,
                     suffix: str = "", file_rows: np.ndarray | None = None,
                     currency: str | None = None) -> gpd.GeoDataFrame:
    """Normalise columns and check every row; problems become reason codes (``closed``: rows whose outline the file
    left open, closed to read it, ``GEOMETRY_REPAIRED``; ``suffix``: of the file the frame was read from, lower case:
    a Shapefile's AREA column is its outlines' area, a GeoJSON's CRS is EPSG:4326 where it names none; ``file_rows``:
    each row's number in the file, ``parcels_from_frame``, which messages and stand-in ids give; ``currency``: the
    config's, as ``read_parcels`` takes it). Parcels whose
    outlines cannot be used are warned of once per code (``_warn_unusable``).

    Returns a new GeoDataFrame with columns ``parcel_id`` (str), ``borrower_id`` (str or None),
    ``declared_crop`` (str or None), ``declared_area_ha`` (float, NaN when absent; from mu: / 15, to the square
    metre), ``declared_area_mu`` (only when the input gives mu: the area as declared, NaN when absent), ``region``
    (str or None: selects the config's regional prices and costs), ``reasons`` (list of codes)
    and the geometry, repaired where it was invalid (a ``MAP_ONLY_CODES`` parcel's kept for the map: ``map_only``).
    """
    geometry_column = frame.geometry.name
    file_rows = np.arange(1, len(frame) + 1) if file_rows is None else np.asarray(file_rows)
    # Columns are matched ignoring case (and a Shapefile's cut names, and area_mu); others keep their names.
    ours = {c: name for c in frame.columns if c != geometry_column and (name := _column_name(c)) in PARCEL_COLUMNS}
    for name in PARCEL_COLUMNS:
        if len(same := [str(c) for c, target in ours.items() if target == name]) > 1:
            raise InputError(f"{source}: columns {' and '.join(same)} both read as {name} (names are matched ignoring "
                             "case): rename or remove all but one")
    if len(areas := [c for c, target in ours.items() if target.startswith("declared_area_")]) > 1:
        # A column holding no value (or only 0s) declares nothing: a run's results, read as the next season's
        # parcels, carry an empty declared_area_mu beside the hectares their file gave.
        declaring = [c for c in areas if _declares(frame[c]).any()]
        if len(declaring) > 1:
            by_unit = {ours[c]: c for c in declaring}
            hectares, mu = (frame[by_unit[name]] for name in ("declared_area_ha", "declared_area_mu"))
            if not (apart := _declared_apart(hectares, mu)).any():
                # A run's results of parcels declared in mu: the mu as declared, and its hectares worked out from them.
                declaring = [by_unit["declared_area_mu"]]
        if len(declaring) > 1:
            # Most rows one declaration twice (a run's results), a few not: those are named, as typos would be.
            rows = "" if apart.mean() > 0.5 else "; they disagree on row(s) " + ", ".join(
                f"{file_rows[k]} ({hectares.iloc[k]} ha, {mu.iloc[k]} mu)" for k in np.flatnonzero(apart)[:3])
            raise InputError(f"{source}: columns {' and '.join(map(str, declaring))} both give the declared area (in "
                             f"ha and in mu, 1 亩 = 1/15 ha){rows}: keep one")
        unused = [c for c in areas if c not in declaring] if declaring else areas[1:]
        frame, ours = frame.drop(columns=unused), {c: name for c, name in ours.items() if c not in unused}
    unread = frame.drop(columns=[geometry_column, *ours])
    frame = frame.rename(columns=ours)
    if "parcel_id" not in frame.columns:
        raise InputError(
            f"{source} has no 'parcel_id' column (columns: {', '.join(map(str, frame.columns))})"
        )
    _warn_unread_columns(unread, ours, source, suffix == ".shp", currency)
    n = len(frame)
    reasons: list[list[str]] = [[] for _ in range(n)]

    parcel_id = _id_text(frame["parcel_id"], source)
    _check_excel_ids(parcel_id, source, file_rows)
    _warn_id_variants(parcel_id, source, "parcel")
    _warn_separator_ids(parcel_id, source)
    missing_id = parcel_id.isna()
    for i in np.flatnonzero(missing_id.to_numpy()):
        reasons[i].append("MISSING_PARCEL_ID")
    duplicated = parcel_id.duplicated(keep=False) & ~missing_id
    # As written: a number column's ids are their numbers (a float column's 101.0 is the integer 101 with a blank).
    written = parcel_id if pd.api.types.is_numeric_dtype(frame["parcel_id"]) else frame["parcel_id"]
    _warn_duplicate_ids(parcel_id[duplicated], written[duplicated], source)
    parcel_id = parcel_id.where(~missing_id, pd.Series(_stand_in_ids(parcel_id, file_rows), index=frame.index))
    for i in np.flatnonzero(duplicated.to_numpy()):
        reasons[i].append("DUPLICATE_PARCEL_ID")

    borrower_id = _optional_text(frame, "borrower_id", source)
    _check_excel_ids(borrower_id, source, file_rows)
    if _mostly_national_ids(borrower_id):
        logger.warning("%s: borrower_id values look like national identity numbers (most pass the check of a resident "
                       "ID card number, an Aadhaar number or a CPF): every output carries them (README: Personal "
                       "data); the lender's own reference for each borrower keeps them out", source)
    # One borrower written two ways is two, each its own cap and decision: a doubted parcel moved under the other
    # leaves the first approved, so both are referred.
    variants = _warn_id_variants(borrower_id, source, "borrower", "BORROWER_ID_VARIANT")
    for i in np.flatnonzero(borrower_id.isna().to_numpy()):
        reasons[i].append("MISSING_BORROWER_ID")
    for i in np.flatnonzero(variants):
        reasons[i].append("BORROWER_ID_VARIANT")

    outlines = _without_m(frame.geometry.to_numpy())
    too_many_vertices = _too_many_vertices(outlines, parcel_id, source)  # before the validity checks they would stall
    for i in np.flatnonzero(too_many_vertices):
        outlines[i] = _sketch(outlines[i])
    not_finite = _not_finite_coordinates(outlines)  # before the repair, which drops such a vertex as a crossing
    geometry, repaired = repair_geometries(outlines)
    geometry_reasons = [(int(i), "TOO_MANY_VERTICES") for i in np.flatnonzero(too_many_vertices)]
    # Not EMPTY_GEOMETRY as well, nor a repair of what is IMPOSSIBLE_COORDINATES.
    geometry_reasons += [(i, code) for i, code in repaired if not too_many_vertices[i] and not not_finite[i]]
    flagged = {i for i, _ in geometry_reasons}
    if closed is not None:
        geometry_reasons += [(int(i), "GEOMETRY_REPAIRED") for i in np.flatnonzero(closed) if i not in flagged]
    off_globe = _impossible_coordinates(geometry, frame.crs)
    impossible = off_globe | not_finite
    if impossible.any() and not (usable_geometries(geometry) & ~impossible).any():
        if not off_globe.any():
            others = len(geometry) - int(not_finite.sum())
            raise InputError(f"{source}: no parcel can be measured: {int(not_finite.sum())} have a vertex that is not "
                             f"a number (NaN or infinite; first: parcel {parcel_id.iloc[np.argmax(not_finite)]}), fix "
                             "those vertices" + (f"; the {others} others are empty or not polygons" if others else ""))
        x, y = _first_off_globe_vertex(geometry[np.flatnonzero(off_globe)[0]], frame.crs)
        raise InputError(
            f"{source}: no parcel has coordinates possible in its coordinate reference system {frame.crs.to_string()} "
            f"(e.g. {x:g}, {y:g}); {_off_globe_advice(x, y, frame.crs, suffix in GEOJSON_SUFFIXES)}; --parcels-crs "
            "(parcels_crs= in Python) applies only to a file that declares none"
        )
    # Flat once its coordinates are known possible: a vertex typed 1e20 makes a spike of no area, but is off the globe.
    flat = _flat(geometry) & ~impossible
    geometry[flat] = None
    geometry_reasons = [(i, code) for i, code in geometry_reasons if not flat[i]]
    geometry_reasons += [(int(i), "EMPTY_GEOMETRY") for i in np.flatnonzero(flat)]
    _refuse_no_polygon(geometry, outlines, geometry_reasons, source)
    geometry[impossible] = None
    geometry_reasons += [(int(i), "IMPOSSIBLE_COORDINATES") for i in np.flatnonzero(impossible)]
    _warn_unusable(geometry_reasons, outlines, parcel_id, source)
    # Each outline projected to its UTM zone once: its span and its area there are both checked.
    area_m2, span_m = _utm_area_and_span_m(geometry, frame.crs) if frame.crs is not None else (None, None)
    too_large = _too_large(geometry, span_m, parcel_id, source)  # kept for the map, as TOO_MANY_VERTICES is
    geometry_reasons += [(int(i), "PARCEL_TOO_LARGE") for i in np.flatnonzero(too_large)]
    _refuse_specks(np.where(too_large, None, geometry), area_m2, frame.crs, source)
    too_small = _too_small(np.where(too_large, None, geometry), area_m2, parcel_id, source)
    geometry_reasons += [(int(i), "PARCEL_TOO_SMALL") for i in np.flatnonzero(too_small)]
    for i, code in geometry_reasons:
        reasons[i].append(code)

    in_mu = "declared_area_mu" in frame.columns
    declared = _declared_area(frame, parcel_id, reasons, source)
    declared_area = (declared / MU_PER_HA).round(4) if in_mu else declared
    # The area in mu as the borrower declared it, kept for the audit: 0.9 mu read as 0.06 ha is not what was signed.
    as_declared_mu = {"declared_area_mu": declared.to_numpy(dtype=float)} if in_mu else {}
    if area_m2 is not None:
        _warn_area_unit(declared_area.to_numpy(dtype=float), in_mu, np.where(too_large | too_small, None, geometry),
                        area_m2, source, currency)
    crop = _optional_text(frame, "declared_crop").str.strip().str.lower()
    return gpd.GeoDataFrame(
        {
            "parcel_id": parcel_id.to_numpy(dtype=object),
            "borrower_id": borrower_id.to_numpy(dtype=object),
            "declared_crop": crop.to_numpy(dtype=object),
            "declared_area_ha": declared_area.to_numpy(dtype=float),
            **as_declared_mu,
            "region": _optional_text(frame, "region", source).to_numpy(dtype=object),
            "reasons": reasons,
        },
        geometry=geometry,
        crs=frame.crs,
    )


def _without_m(geoms: np.ndarray) -> np.ndarray:
    """The geometries without their M values (a GPS field walk's PolygonM or PolygonZM: time or distance walked per
    vertex), Z kept: M means nothing to a parcel's outline, and the outputs' writers cannot take it."""
    geoms = np.asarray(geoms, dtype=object).copy()
    measured = shapely.has_m(geoms)
    for dimension, rows in ((2, measured & ~shapely.has_z(geoms)), (3, measured & shapely.has_z(geoms))):
        if rows.any():
            geoms[rows] = shapely.from_wkb(shapely.to_wkb(geoms[rows], output_dimension=dimension))
    return geoms


def _sketch(outline: shapely.Geometry) -> shapely.Geometry | None:
    """A TOO_MANY_VERTICES outline thinned to every k-th vertex of each ring, at most about half
    ``MAX_PARCEL_VERTICES`` in all, to show the parcel on the map (it is not measured); None for what is not polygons.
    Thinning takes time in step with the vertices, where simplifying a spiky outline takes GEOS seconds, or crashes it.
    """
    if shapely.get_type_id(outline) not in (3, 6):  # Polygon, MultiPolygon
        return None
    step = -(-2 * shapely.get_num_coordinates(outline) // MAX_PARCEL_VERTICES)

    def thinned(ring: shapely.LinearRing) -> np.ndarray | None:
        kept = np.asarray(ring.coords)[:-1:step]
        return np.vstack([kept, kept[:1]]) if len(kept) >= 3 else None

    polygons = [shapely.Polygon(shell, [hole for hole in map(thinned, part.interiors) if hole is not None])
                for part in shapely.get_parts(outline) if (shell := thinned(part.exterior)) is not None]
    return shapely.multipolygons(polygons) if len(polygons) > 1 else next(iter(polygons), None)


def _refuse_specks(geoms: np.ndarray, area_m2: np.ndarray | None, crs: CRS | None, source: str) -> None:
    """Refuse a file whose every usable parcel is under ``SPECK_M2`` (``area_m2``: each one's, ``utm_area_m2``):
    coordinates in another CRS than the file declares (longitude and latitude degrees labelled as UTM metres make
    every field a speck near the zone's origin).

    Raises:
        InputError: naming the CRS declared, the parcels' bounds in it and the largest parcel's area.
    """
    usable = np.flatnonzero(usable_geometries(geoms))
    if crs is None or crs.geodetic_crs is None or area_m2 is None or usable.size == 0:
        return  # an engineering CRS: the run stops where it cannot be placed on the imagery (load_inputs)
    area = area_m2[usable].max()
    if area >= SPECK_M2:
        return
    bounds = ", ".join(f"{v:g}" for v in shapely.total_bounds(geoms[usable]))
    raise InputError(
        f"{source}: every parcel is smaller than {SPECK_M2:g} m2 (the largest {area:.2g} m2) in the coordinate "
        f"reference system the file declares, {crs.to_string()} ({crs.name}), where the parcels span {bounds}: the "
        "file's CRS is likely mislabelled (longitude and latitude degrees labelled as metres, say); write the "
        "coordinates' true CRS into the file (e.g. ogr2ogr -a_srs EPSG:4326 fixed.gpkg FILE): --parcels-crs "
        "(parcels_crs= in Python) applies only to a file that declares none"
    )


def warn_off_imagery(parcels: gpd.GeoSeries, outside: np.ndarray, imagery_crs: CRS | str,
                     imagery_bounds: tuple[float, float, float, float], source: str,
                     refetch: str | None = None, datum_hint: str | None = None) -> None:
    """Warn when all or nearly all (``OFF_IMAGERY_SHARE``) usable parcels lie wholly off the imagery, naming where
    both lie in longitude and latitude: parcels of another tile, or a file whose CRS is mislabelled (latitude and
    longitude swapped, say), whose every parcel is otherwise only an ``OUTSIDE_IMAGERY`` row. Off imagery that
    ``farmcredit fetch`` wrote (``refetch`` given), that warning gives ``refetch`` as the other possibility, and fewer
    parcels wholly off it are warned of in one warning: they lie outside the windows fetched, and ``refetch`` adds them.

    Args:
        parcels: the parcels in their own CRS (None where unusable).
        outside: True where a parcel lies wholly off the imagery.
        imagery_bounds: the imagery's (west, south, east, north) in ``imagery_crs``.
        source: the parcels, as the warning names them.
        refetch: the ``farmcredit fetch`` command that adds the parcels' windows to the imagery folder, when a fetch
            wrote it (``pipeline._refetch_command``).
        datum_hint: where another ``--parcels-datum`` would put most of them on the imagery, the words that say so
            (``DatumCheck.off_imagery_hint``): said first, before a mislabelled CRS or ``refetch``.
    """
    geoms = parcels.to_numpy()
    usable = usable_geometries(geoms)
    off, parcels_usable = int(outside[usable].sum()), int(usable.sum())
    if not off:
        return
    if off < OFF_IMAGERY_SHARE * parcels_usable:
        if refetch is not None:
            logger.warning("%s: %d of %d parcel(s) lie wholly outside the windows their imagery folder was fetched "
                           "for, so they are not assessed (OUTSIDE_IMAGERY); fetch theirs into it, then assess again "
                           "(a rerun downloads nothing already there): %s", source, off, parcels_usable, refetch)
        return
    where, imagery = (Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform_bounds(*bounds, errcheck=False)
                      for crs, bounds in ((parcels.crs, shapely.total_bounds(geoms[usable])),
                                          (imagery_crs, imagery_bounds)))
    otherwise = ("else, if they lie outside the windows their imagery folder was fetched for, fetch theirs into it, "
                 f"then assess again (a rerun downloads nothing already there): {refetch}" if refetch is not None
                 else "else assess them with imagery of their own place")
    logger.warning(
        "%s: %d of %d parcels lie wholly outside the imagery: they span longitude %.4f to %.4f, latitude %.4f to %.4f "
        "(read in %s, the CRS they declare), the imagery longitude %.4f to %.4f, latitude %.4f to %.4f. %s the "
        "parcels should lie on this imagery, their file's CRS may be mislabelled (latitude and longitude swapped, "
        "degrees labelled as metres): write the coordinates' true CRS into the file, as --parcels-crs (parcels_crs= in "
        "Python) applies only to a file that declares none; %s", source, off, parcels_usable, where[0], where[2],
        where[1], where[3], parcels.crs.to_string(), imagery[0], imagery[2], imagery[1], imagery[3],
        f"First, {datum_hint}. Else, if" if datum_hint else "If", otherwise)


def _warn_unread_columns(unread: pd.DataFrame, ours: dict[object, str], source: str, shapefile: bool,
                         currency: str | None) -> None:
    """Warn of the ``unread`` columns that look like a parcel column not read (``_warn_unread_areas``,
    ``_warn_unread_crops``, ``_warn_unread_borrowers``); ``ours``: the columns read, by the name each is read as;
    ``currency``: the config's."""
    read = {name: str(column) for column, name in ours.items()}
    _warn_unread_areas(unread, next((read[name] for name in read if name.startswith("declared_area_")), None), source,
                       shapefile, currency)
    _warn_unread_crops(unread, read.get("declared_crop"), source)
    _warn_unread_borrowers(unread, read.get("borrower_id"), source)


def _look_alikes(unread: pd.DataFrame, named: Callable[[str], bool], valued: Callable[[pd.Series], bool],
                 what: str, read: str | None, source: str) -> list[str]:
    """The ``unread`` columns whose folded names (``_folded_words``: camelCase words apart) ``named`` tells and whose
    values ``valued`` does look like ``what`` (declared area); where such a column is ``read`` (its name), they are only
    noted (info) and none is returned: the column read is the one used."""
    like = [str(column) for column, values in unread.items() if named(_folded_words(str(column))) and valued(values)]
    if like and read is not None:
        logger.info("%s: column(s) %s, named like a %s, are also present, not read: the %s is %s's", source,
                    ", ".join(map(repr, like)), what, what, read)
        return []
    return like


def _named_like(name: str, parts: Iterable[str], words: frozenset[str]) -> bool:
    """True where a folded column name holds one of ``parts`` or, as a whole word (``_name_words``), of ``words``."""
    return any(part in name for part in parts) or not words.isdisjoint(_name_words(name))


def _warn_unread_areas(unread: pd.DataFrame, read: str | None, source: str, shapefile: bool,
                       currency: str | None) -> None:
    """Warn once of the ``unread`` columns whose names look like a declared area (面积(亩), area_ha, 申报面积,
    क्षेत्रफल (हेक्टेयर), guntha; not ``NOT_AREA_WORDS`` nor outline areas) and whose values are mostly numbers
    (``_mostly_numbers``), naming the columns read (declared_area_mu, China's 亩, only where ``currency`` is CNY) and,
    for one named for a unit of ``LAND_UNIT_NAMES``, its size in hectares; where a declared area is ``read`` (its
    column), only note them (info): its column is the one checked."""
    def an_area(name: str) -> bool:
        outline = name.startswith(OUTLINE_AREA_PREFIXES) or (shapefile and name == "area")
        if outline or not NOT_AREA_WORDS.isdisjoint(_name_words(name)):
            return False
        return _named_like(name, AREA_NAME_PARTS, AREA_NAME_WORDS) or bool(_units_named(name))

    if not (areas := _look_alikes(unread, an_area, _mostly_numbers, "declared area", read, source)):
        return
    in_units = {name: units[0] for name in areas if (units := _units_named(folded(name), of_an_area=True))}
    sizes = dict.fromkeys(in_units.values())
    in_units_text = (f"; {', '.join(f'{name!r}, in {unit}s' for name, unit in in_units.items())}: convert to "
                     f"hectares ({', '.join(f'1 {_unit_named(unit)} = {_unit_size(unit)}' for unit in sizes)}) "
                     "into declared_area_ha" if in_units else "")
    in_mu = currency == "CNY"  # the mu is China's unit: a lender elsewhere declares in hectares
    columns = [name for name in PARCEL_COLUMNS if in_mu or name != "declared_area_mu"]
    logger.warning("%s: column(s) %s are not read, though named like a declared area; the columns read are %s: "
                   "name the declared area's column declared_area_ha (hectares)%s, or no parcel's declared area is "
                   "checked against the imagery%s", source, ", ".join(map(repr, areas)), ", ".join(columns),
                   f" or {MU_COLUMN} in 亩 (1/15 ha)" if in_mu else "", in_units_text)


def _warn_unread_crops(unread: pd.DataFrame, read: str | None, source: str) -> None:
    """Warn once of the ``unread`` columns whose names look like a declared crop (``_named_like_a_crop``: cultura,
    CropType, 作物) and whose values are mostly crops' names (``_mostly_names``): no parcel's crop
    would be checked against the imagery (no CROP_MISMATCH); where ``declared_crop`` is ``read``, only note them
    (info)."""
    if crops := _look_alikes(unread, _named_like_a_crop, _mostly_names,
                             "declared crop", read, source):
        logger.warning("%s: column(s) %s are not read, though named like a declared crop: name the declared crop's "
                       "column declared_crop, or no parcel's crop is checked against the imagery (CROP_MISMATCH)",
                       source, ", ".join(map(repr, crops)))


def _named_like_a_crop(name: str) -> bool:
    """True where a folded column name holds one of ``CROP_NAME_PARTS`` or a word (``_name_words``) starting with one
    of ``CROP_NAME_STARTS`` (croptype, crop1), not of ``NOT_CROP_STARTS``."""
    return any(part in name for part in CROP_NAME_PARTS) or any(
        word.startswith(CROP_NAME_STARTS) and not word.startswith(NOT_CROP_STARTS) for word in _name_words(name))


def _warn_unread_borrowers(unread: pd.DataFrame, read: str | None, source: str) -> None:
    """Without a ``borrower_id`` column (``read`` None), warn once that each parcel is lent as its own borrower, naming
    the ``unread`` columns that look like a borrower id, of ids repeated across rows (``_repeated_ids``): those named
    so (``BORROWER_NAME_PARTS``: cooperado, farmer_id, 借款人) proposed as borrower_id; those of national identity
    numbers (``_named_national_id`` or ``_mostly_national_ids``: CPF, id_card) told to hold them; those of farmers'
    names, phones or addresses (``_named_personal``: farmer_name, 户主姓名) never proposed, told to be no ids where
    they are the only ones. Not refused: stand-alone parcels are lent on so."""
    look_alikes = _look_alikes(
        unread, lambda name: _named_like(name, BORROWER_NAME_PARTS, BORROWER_NAME_WORDS) or _named_national_id(name),
        _repeated_ids, "borrower id", read, source)
    if read is not None:
        return
    values = {str(column): column_values for column, column_values in unread.items()}
    personal = [name for name in look_alikes if _named_personal(_folded_words(name))]
    national = [name for name in look_alikes if name not in personal
                and (_named_national_id(_folded_words(name)) or _mostly_national_ids(values[name]))]
    ids = [name for name in look_alikes if name not in personal and name not in national]
    hints = []
    if ids:
        hints.append(f"column(s) {', '.join(map(repr, ids))}, not read, look like a borrower id (so named, their "
                     "values repeated across rows): if one gives each parcel's borrower, name it borrower_id")
    if national:
        hints.append(f"column(s) {', '.join(map(repr, national))}, not read, hold national identity numbers (CPF, "
                     "resident ID card, Aadhaar), repeated across rows: give each parcel's borrower the lender's own "
                     "reference in a borrower_id column (README: Personal data); one of these named borrower_id "
                     "would do, but every output would then carry the numbers")
    if personal and not hints:
        hints.append(f"column(s) {', '.join(map(repr, personal))}, not read, give farmers' names, phones or "
                     "addresses: no borrower id (names are not unique, and farmers sharing one would be lent as one "
                     "borrower); give each parcel's borrower the lender's own reference in a borrower_id column")
    logger.warning("%s: no borrower_id column: each parcel is lent as its own borrower (MISSING_BORROWER_ID), the "
                   "borrower-level rules (borrower cap, minimum loan, a referral holding the borrower's other parcels) "
                   "applied to it alone; %s", source,
                   "; ".join(hints or ["if parcels share borrowers, give each one's in a borrower_id column"]))


def _folded_words(name: str) -> str:
    """A column name folded (``folded``), its camelCase words apart first (``CAMEL_CASE_WORDS``).

    >>> [_folded_words(name) for name in ("farmerIdCard", "holderAadhaarNo", "IDCard", "area_ha", "身份证号")]
    ['farmer_id_card', 'holder_aadhaar_no', 'id_card', 'area_ha', '身份证号']
    """
    return folded(CAMEL_CASE_WORDS.sub("_", name))


def _named_national_id(name: str) -> bool:
    """True where a folded column name (``_folded_words``) names national identity numbers: one of
    ``NATIONAL_ID_WORDS`` as a word, of ``NATIONAL_ID_PARTS`` within it, its separators off, or of
    ``NATIONAL_ID_STARTS`` so from a word's start (not president_id's residentid, nor rfid_card's idcard).

    >>> [_named_national_id(name) for name in ("cpf", "id card", "身份证号码", "aadhaar_no", "farmer_id", "card_id",
    ...                                        "president_id", "rfid_card", "farmer_idcardno", "memberaadhaar")]
    [True, True, True, True, False, False, False, False, True, True]
    """
    words = _name_words(name)
    tails = ["".join(words[k:]) for k in range(len(words))]  # the name, its separators off, from each word on
    return (not NATIONAL_ID_WORDS.isdisjoint(words) or any(part in tails[0] for part in NATIONAL_ID_PARTS)
            or any(tail.startswith(NATIONAL_ID_STARTS) for tail in tails))


def _named_personal(name: str) -> bool:
    """True where a folded column name names a farmer or gives a phone or an address (``PERSONAL_NAME_PARTS``,
    ``PERSONAL_NAME_WORDS``).

    >>> [_named_personal(name) for name in ("farmer_name", "户主姓名", "tel_cooperado", "farmer_id", "cooperado")]
    [True, True, True, False, False]
    """
    return _named_like(name, PERSONAL_NAME_PARTS, PERSONAL_NAME_WORDS)


def _mostly_national_ids(values: pd.Series) -> bool:
    """True where more than half the distinct values given (``_given_values``; a number column's as whole numbers)
    are national identity numbers whose check holds (``_national_id``)."""
    given = _given_values(values).str.replace(r"^(\d+)\.0$", r"\1", regex=True).unique()
    return len(given) > 0 and sum(map(_national_id, given)) > len(given) / 2


def _national_id(value: str) -> bool:
    """Whether ``value`` is a national identity number whose check holds: an 18-character resident ID number (GB
    11643, ``_resident_id``), an Aadhaar number (``AADHAAR``, Verhoeff's check) or a CPF (``CPF``, its two check
    digits; not one digit eleven times). One in 11, 10 or 100 numbers of the form passes by chance.

    Example:
        >>> [_national_id(value) for value in ("410102196001011003", "2345 6789 0127", "123.456.789-09", "B0001")]
        [True, True, True, False]
    """
    if _resident_id(value):
        return True
    if AADHAAR.fullmatch(value):
        check = 0
        for place, digit in enumerate(reversed(value.replace(" ", ""))):
            check = VERHOEFF_MULTIPLY[check][VERHOEFF_PERMUTE[place % 8][int(digit)]]
        return check == 0
    if CPF.fullmatch(value) and len(set(digits := [int(d) for d in re.sub(r"\D", "", value)])) > 1:
        return all(sum(d * w for d, w in zip(digits, range(n + 1, 1, -1))) * 10 % 11 % 10 == digits[n]
                   for n in (9, 10))
    return False


def _given_values(values: pd.Series) -> pd.Series:
    """The values given (of the first ``AREA_VALUES_READ``) as text in Unicode's compatibility form, blanks left out."""
    given = values.dropna().head(AREA_VALUES_READ).astype(str).map(
        lambda value: unicodedata.normalize("NFKC", value).strip())
    return given[given.ne("")]


def _mostly_numbers(values: pd.Series) -> bool:
    """True where more than half the values given (``_given_values``) are numbers, or numbers with a unit
    (``NUMBER_WITH_UNIT``), or none is given (the column's name then tells): a column of place names is no area."""
    if pd.api.types.is_numeric_dtype(values):
        return True
    given = _given_values(values)
    return given.empty or given.str.fullmatch(NUMBER_WITH_UNIT).mean() > 0.5


def _mostly_names(values: pd.Series) -> bool:
    """True where more than half the values given (``_given_values``) are names of letters (``_a_name``: soja, 小麦),
    not numbers, years or codes, and mostly not yes/no flags (``FLAG_VALUES``): a crop's name, not its area, its
    season (2024-25) or whether it is insured."""
    if pd.api.types.is_numeric_dtype(values) or (given := _given_values(values)).empty:
        return False
    if given.map(lambda value: folded(value) in FLAG_VALUES).mean() > 0.5:
        return False
    return given.map(_a_name).mean() > 0.5


def _a_name(value: str) -> bool:
    """True where ``value``, a bracket's note aside (``BRACKETED``), is letters and their marks (Unicode's L and M
    categories: गेहूँ's vowel signs), words joined by ``CROP_NAME_JOINERS``: no digit or other sign.

    >>> [_a_name(value) for value in ("winter wheat", "गेहूँ", "soja/milho", "wheat (HD-2967)", "2024-25", "A1")]
    [True, True, True, True, False, False]
    """
    value = BRACKETED.sub("", value)
    return value[:1].isalpha() and all(char in CROP_NAME_JOINERS or unicodedata.category(char)[0] in "LM"
                                       for char in value)


def _repeated_ids(values: pd.Series) -> bool:
    """True where the values given, text or whole numbers (ids, not measures), are fewer distinct than the rows giving
    them, a borrower's id on each of the borrower's parcels; in a column not named as an id (``ID_NAME_WORDS``), as
    many as ids are too (``BORROWER_IDS_MIN``, or half the rows, and ``BORROWER_IDS_SHARE`` of them: not a few
    segments' labels) and not all years (``YEAR``: member_since)."""
    given = values.dropna()
    if pd.api.types.is_float_dtype(given) and not given.eq(given.round()).all():
        return False
    given = given.astype(str).str.strip()
    given = given[given.ne("")]
    distinct = given.nunique()
    if not 0 < distinct < len(given):
        return False
    return _named_as_an_id(_folded_words(str(values.name))) or (
        distinct >= min(BORROWER_IDS_MIN, len(given) / 2) and distinct >= BORROWER_IDS_SHARE * len(given)
        and not given.str.fullmatch(YEAR).all())


def _named_as_an_id(name: str) -> bool:
    """True where a folded column name is a borrower's id by its words: a national identity number's
    (``_named_national_id``: cpf, id_card), or one of ``ID_NAME_WORDS`` first or last beside a word naming the
    borrower (farmer_id, member_no, id_cliente; not farmer_zip_code nor member_no_of_plots).

    >>> [_named_as_an_id(name) for name in ("cpf", "farmer_id", "id_cliente", "farmer_zip_code", "member_no_of_plots")]
    [True, True, True, False, False]
    """
    if _named_national_id(name):
        return True
    words = [word for word in _name_words(name) if word]
    return len(words) > 1 and any(
        first in ID_NAME_WORDS and _named_like(second, BORROWER_NAME_PARTS, BORROWER_NAME_WORDS)
        for first, second in ((words[0], words[1]), (words[-1], words[-2])))


def _name_words(name: str) -> list[str]:
    """The words of a (folded) column name: runs of letters and digits, ``_`` a separator, Latin letters apart from
    another script's (承包地ha: 承包地, ha)."""
    latin, other = f"[{LATIN_LETTERS}]", f"[^\\W\\d_{LATIN_LETTERS}]"
    return re.split(rf"[\W_]+|(?<={latin})(?={other})|(?<={other})(?={latin})", name)


def _units_named(name: str, of_an_area: bool = False) -> list[str]:
    """The ``LAND_UNIT_NAMES`` units a folded column name names: by a Latin name as a whole word, another as a part;
    ``of_an_area`` (a column otherwise named an area), by ``AREA_UNIT_ABBREVIATIONS`` too."""
    words = _name_words(name)
    units = [unit for unit, names in LAND_UNIT_NAMES.items()
             if any(unit_name in words if unit_name.isascii() else unit_name in name for unit_name in names)]
    abbreviated = [AREA_UNIT_ABBREVIATIONS[word] for word in words if of_an_area and word in AREA_UNIT_ABBREVIATIONS]
    return list(dict.fromkeys(units + abbreviated))


def _unit_size(unit: str) -> str:
    """A ``LAND_UNITS_HA`` unit's size, as a message gives it (0.4047 ha; 0.13-0.27 ha by state)."""
    low, high = LAND_UNITS_HA[unit]
    return f"{low:g} ha" if low == high else f"{low:g}-{high:g} ha by state"


def _unit_named(unit: str) -> str:
    """A ``LAND_UNITS_HA`` unit as a message names it, with its other name (cent (decimal))."""
    return f"{unit} ({LAND_UNIT_ALSO[unit]})" if unit in LAND_UNIT_ALSO else unit


def _column_name(column: object) -> str:
    """A column's name as farmcredit reads it: lower case, a Shapefile's cut names (``borrower_i``) made whole,
    ``MU_SHORT_NAME`` read as declared_area_mu."""
    name = str(column).lower()
    return _SHORT_NAMES.get(name, name)


def map_only(reasons: Iterable[Iterable[str]]) -> np.ndarray:
    """True where a parcel's reason codes hold one of ``MAP_ONLY_CODES``: its outline is drawn, never measured.

    Example:
        >>> map_only([[], ["MISSING_BORROWER_ID", "PARCEL_TOO_LARGE"]]).tolist()
        [False, True]
    """
    return np.array([not MAP_ONLY_CODES.isdisjoint(codes) for codes in reasons], dtype=bool)


def usable_geometries(geoms: np.ndarray) -> np.ndarray:
    """True where a geometry is present and not empty (what the measuring stages can use)."""
    return ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))


def utm_zone_epsg(lon: np.ndarray | float, lat: np.ndarray | float) -> np.ndarray:
    """The EPSG code of the WGS84 UTM zone of each longitude and latitude (degrees): 326zz north, 327zz south.

    Example:
        >>> int(utm_zone_epsg(13.1, 48.3))
        32633
    """
    zone = np.minimum(np.floor(np.mod(np.asarray(lon, dtype=float) + 180.0, 360.0) / 6.0), 59).astype(np.int64) + 1
    return np.where(np.asarray(lat) < 0, 32700, 32600) + zone


def utm_area_m2(geoms: np.ndarray, crs: CRS | str) -> np.ndarray:
    """Each polygon's planar area (m2) in its own UTM zone, the surveyor's: the WGS84 zone of its centroid's longitude,
    north or south by its latitude, whatever ``crs`` (the polygons') is; 0 where a geometry is missing.

    Polygons whose zone ``crs`` is are measured as they are (imagery in its UTM zone: no reprojection); the others
    are reprojected, vertex by vertex, one zone at a time. Without a place on the earth (an engineering CRS,
    coordinates off the globe) the area is planar in ``crs``, its unit converted to metres.

    Example:
        >>> field = shapely.box(500_000, 4_000_000, 500_100, 4_000_100)  # 1 ha in UTM zone 50N
        >>> float(utm_area_m2(np.array([field]), "EPSG:32650")[0])
        10000.0
    """
    return _zoned_area_m2(*_in_utm_zones(geoms, crs))


def _zoned_area_m2(zoned: np.ndarray, metres_per_unit: np.ndarray) -> np.ndarray:
    """Each polygon's area (m2) as ``_in_utm_zones`` placed it; 0 where a geometry is missing."""
    return np.where(usable_geometries(zoned), shapely.area(zoned) * metres_per_unit**2, 0.0)


def _utm_area_and_span_m(geoms: np.ndarray, crs: CRS | str) -> tuple[np.ndarray, np.ndarray]:
    """Each polygon's area (m2, ``utm_area_m2``) and span (m: the longer side of its bounding box) in its own UTM
    zone, from one projection; 0 where a geometry is missing, the span NaN (or inf) where its coordinates cannot be
    placed in its zone.

    Example:
        >>> strip = shapely.box(500_000, 4_000_000, 502_000, 4_000_100)  # 2 km by 100 m in UTM zone 50N
        >>> [float(v[0]) for v in _utm_area_and_span_m(np.array([strip]), "EPSG:32650")]
        [200000.0, 2000.0]
    """
    zoned, metres_per_unit = _in_utm_zones(geoms, crs)
    x0, y0, x1, y1 = shapely.bounds(zoned).T
    with np.errstate(invalid="ignore"):
        span = np.where(usable_geometries(zoned), np.fmax(x1 - x0, y1 - y0) * metres_per_unit, 0.0)
    return _zoned_area_m2(zoned, metres_per_unit), span


def _in_utm_zones(geoms: np.ndarray, crs: CRS | str) -> tuple[np.ndarray, np.ndarray]:
    """Each polygon in its own UTM zone (``utm_area_m2``), None where missing, and per polygon the metres in one unit
    of its coordinates: 1, or, for one with no place on the earth (left in ``crs``), the unit of ``crs``."""
    crs = CRS.from_user_input(crs)
    zoned = np.asarray(geoms, dtype=object).copy()
    metres_per_unit = np.ones(len(zoned))
    present = np.flatnonzero(usable_geometries(zoned))
    zone_epsg = np.zeros(present.size, dtype=np.int64)  # 0: no zone
    if crs.geodetic_crs is not None and present.size:
        centres = shapely.centroid(zoned[present])
        lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
            shapely.get_x(centres), shapely.get_y(centres), errcheck=False)
        placed = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90)
        zone_epsg = np.where(placed, utm_zone_epsg(np.where(placed, lon, 0.0), lat), 0)
    own = crs.to_epsg()
    for code in np.unique(zone_epsg):
        group = present[zone_epsg == code]
        if code == 0:
            metres_per_unit[group] = crs.axis_info[0].unit_conversion_factor
        elif code != own:
            to_zone = Transformer.from_crs(crs, f"EPSG:{code}", always_xy=True)
            zoned[group] = shapely.transform(zoned[group], to_zone.transform, interleaved=False)
    return zoned, metres_per_unit


def _declared_area(frame: pd.DataFrame, parcel_id: pd.Series, reasons: list[list[str]], source: str) -> pd.Series:
    """The declared area as float in its column's unit, NaN where absent: ``declared_area_ha`` (ha), or
    ``declared_area_mu`` (mu, as declared; the caller converts it to ha). Text in full-width digits (２, １．５, as a
    Chinese input method types them) is read as its number (NFKC), as are digits of another script (Bengali ০.১৩,
    Devanagari १.५: ``_ascii_digits``), and text ending in the column's unit (30亩,
    0.5 公顷: ``UNIT_SUFFIXES``) as the number before it. A value of exactly 0 is none declared, as a Shapefile (whose
    numbers cannot be blank) and many exports write it: absent, flagged ``DECLARED_AREA_ZERO`` (info). Any other value
    given that is not a positive number (text such as "1,5", or "2亩" in hectares, negative) is flagged
    ``INVALID_DECLARED_AREA`` (referred: a declaration that cannot be checked), counts as absent and is quoted in a
    warning (the first ``QUOTED_VALUES``, with their parcel ids)."""
    in_mu_column = "declared_area_mu" in frame.columns
    column, unit = ("declared_area_mu", "mu") if in_mu_column else ("declared_area_ha", "hectares")
    other, other_unit_name = ("declared_area_ha", "hectares") if in_mu_column else ("declared_area_mu", "mu")
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index)
    given = frame[column]
    own_unit, other_unit = UNIT_SUFFIXES[column], UNIT_SUFFIXES[other]

    def number_text(value: object) -> object:
        if not isinstance(value, str):
            return value
        value = _ascii_digits(value)
        return typed.group(1) if (typed := own_unit.fullmatch(value)) else value

    area = pd.to_numeric(given.map(number_text), errors="coerce").astype(float)
    blank = given.isna() | given.astype("string").str.strip().eq("").fillna(True)
    zero = ~blank & area.eq(0)
    for i in np.flatnonzero(zero.to_numpy()):
        reasons[i].append("DECLARED_AREA_ZERO")
    invalid = ~blank & ~zero & ~(np.isfinite(area) & (area > 0))
    rows = np.flatnonzero(invalid.to_numpy())
    for i in rows:
        reasons[i].append("INVALID_DECLARED_AREA")
    if len(rows):
        values = (given.iloc[i] for i in rows[:QUOTED_VALUES])
        quoted = ", ".join(f"{parcel_id.iloc[i]}: {v!r}" if isinstance(v, str) else f"{parcel_id.iloc[i]}: {v}"
                           for i, v in zip(rows, values))
        in_other_unit = any(isinstance(v, str) and other_unit.fullmatch(_ascii_digits(v))
                            for v in given.iloc[rows])
        comma = next((text for v in given.iloc[rows] if isinstance(v, str)
                      and DECIMAL_COMMA.match(text := _ascii_digits(v))), None)
        logger.warning("%s: %d parcels' %s is not a positive number of %s (%s%s)%s%s; they are flagged "
                       "INVALID_DECLARED_AREA and referred, their areas unchecked against the imagery", source,
                       len(rows), column, unit, quoted, ", ..." if len(rows) > QUOTED_VALUES else "",
                       f" (1 亩 = 1/15 ha: areas in {other_unit_name} go in {other if in_mu_column else MU_COLUMN})"
                       if in_other_unit else "",
                       f"; they are written with a decimal comma ({comma}): write them with a decimal point "
                       f"({comma.replace('.', '').replace(',', '.')}): a comma is not read as one, as 1,500 may be "
                       "one and a half or fifteen hundred" if comma else "")
    return area.where(~invalid & ~zero)


def _ascii_digits(text: str) -> str:
    """``text`` in Unicode's compatibility form (NFKC: full-width ２ as 2), outer blanks off, each decimal digit of
    another script (Bengali ০.১৩, Devanagari १.५) as its ASCII one, for ``pd.to_numeric``."""
    return "".join(str(unicodedata.decimal(char)) if char.isdecimal() else char
                   for char in unicodedata.normalize("NFKC", text).strip())


def _warn_area_unit(declared_ha: np.ndarray, in_mu: bool, geoms: np.ndarray, area_m2: np.ndarray,
                    source: str, currency: str | None = None) -> None:
    """Warn when the declared areas' median ratio to the outlines' areas (of at least ``MIN_PARCELS_FOR_UNIT`` parcels
    or half the file's) says they are in another unit: ``declared_area_ha`` within ``MU_RATIO_BAND`` (mu read as
    hectares overstate every parcel, AREA_OVERSTATED), or, ``in_mu``, ``declared_area_mu`` within its reciprocal
    (hectares read as mu understate every parcel 15-fold), or ``declared_area_ha`` within ``ACRE_RATIO_BAND`` (acres
    read as hectares), or else, of at least ``MIN_PARCELS_FOR_UNIT`` parcels, outside ``DECLARED_RATIO_BAND`` (guntha,
    bigha, m²: the ``LAND_UNITS_HA`` that fit named, of ``currency``'s region (``_units_fitting``), or, none fitting
    or the best only at the end of its range, the unit and outlines to be checked); ``area_m2``: each outline's,
    ``utm_area_m2``. A warning, not a refusal: a file can be honestly off so."""
    declaring = np.flatnonzero(np.isfinite(declared_ha) & usable_geometries(geoms))
    outline_ha = area_m2[declaring] / 10_000
    measured = outline_ha > 0
    if measured.sum() < min(MIN_PARCELS_FOR_UNIT, len(geoms) / 2):
        return
    ratio = float(np.median(declared_ha[declaring[measured]] / outline_ha[measured]))
    if not in_mu and ACRE_RATIO_BAND[0] <= ratio <= ACRE_RATIO_BAND[1]:
        logger.warning("%s: declared areas look like acres (median %.2fx the outlines): 2.471 acres make a hectare; "
                       "read as hectares, they are overstated and their parcels flagged AREA_OVERSTATED; if they are "
                       "in acres, convert them to hectares (1 acre = %g ha) into declared_area_ha", source, ratio,
                       HA_PER_ACRE)
        return
    # The figures declared per hectare of outline: a unit of h ha fits where about 1 / h.
    per_ha = ratio * MU_PER_HA if in_mu else ratio
    low, high = (1 / MU_RATIO_BAND[1], 1 / MU_RATIO_BAND[0]) if in_mu else MU_RATIO_BAND
    if low <= ratio <= high and in_mu:
        logger.warning("%s: the declared areas in mu are a median %.3g times their outlines' areas, as areas in "
                       "hectares would be (1 亩 = 1/15 ha: about 1/15): they are likely hectares, which read as mu are "
                       "a fifteenth of the land declared; if they are in hectares, name the column declared_area_ha",
                       source, ratio)
    elif low <= ratio <= high and currency in (None, "CNY"):  # China's unit; another currency's hints follow
        others, _ = _units_fitting(per_ha, "mu", currency)
        logger.warning("%s: the declared_area_ha values are a median %.1f times their outlines' areas: they are likely "
                       "areas in mu (1 亩 = 1/15 ha: 15 times, less where the outlines take in more than the land "
                       "declared)%s: read as hectares, they are overstated and their parcels flagged AREA_OVERSTATED; "
                       "if they are in mu, name the column %s%s", source, ratio, f", or {others}" if others else "",
                       MU_COLUMN, "; if in another unit, convert them to hectares into declared_area_ha" if others
                       else "")
    elif measured.sum() >= MIN_PARCELS_FOR_UNIT and not DECLARED_RATIO_BAND[0] <= ratio <= DECLARED_RATIO_BAND[1]:
        # Not from fewer parcels: one borrower's over-declaration is no unit, and is not to be converted away.
        declared, unit = ("declared areas in mu (as hectares, mu / 15)", "mu") if in_mu else (
            "declared_area_ha values", "hectares")
        read_so = "overstated and their parcels flagged AREA_OVERSTATED" if ratio > 1 else "understated"
        fitting, at_an_end = _units_fitting(per_ha, "mu" if in_mu else None, currency)
        if fitting:
            logger.warning("%s: the %s are a median %.3g times their outlines' areas, where honest declarations run "
                           "about 1: they are likely not %s but another unit (%s); read as %s, they are %s: convert "
                           "them to hectares into declared_area_ha%s", source, declared, ratio, unit, fitting, unit,
                           read_so, f"; or check the outlines ({JOINT_PLOT})" if at_an_end else "")
        else:
            logger.warning("%s: the %s are a median %.3g times their outlines' areas, far from 1 (honest "
                           "declarations run about 1), and no common land unit fits: check the unit they are in, or "
                           "the outlines (%s); read as %s, they are %s", source, declared, ratio, JOINT_PLOT, unit,
                           read_so)


def _units_fitting(per_ha: float, exclude: str | None, currency: str | None) -> tuple[str, bool]:
    """The ``LAND_UNITS_HA`` units (but ``exclude``, and a regional one where ``currency`` is not of its region:
    ``REGIONAL_UNIT_CURRENCIES``) that ``per_ha`` figures declared per hectare of outline fit (within
    ``UNIT_FIT_BAND``), the best fitting first (size times ``per_ha`` nearest 1), each with the ratio it gives
    (guntha (98.8x)) or, of a size that varies, the size fitting (a bigha of about 0.13 ha), joined by "or"; and
    whether the best is a size that varies taken at an end of its range, short of the ratio (a share of a plot held
    jointly fits so as well)."""
    fits = []
    for unit, (low, high) in LAND_UNITS_HA.items():
        if unit == exclude or (unit in REGIONAL_UNIT_CURRENCIES and currency not in REGIONAL_UNIT_CURRENCIES[unit]):
            continue
        size = min(max(1 / per_ha, low), high)  # a varying unit's size nearest the ratio's
        named = _unit_named(unit)
        article = "an" if named[0] in "aeiou" else "a"
        if UNIT_FIT_BAND[0] <= (fit := round(per_ha * size, 6)) <= UNIT_FIT_BAND[1]:
            fits.append((abs(math.log(fit)), f"{named} ({1 / low:,.0f}x)" if low == high and low < 0.01 else
                         f"{named} ({1 / low:.3g}x)" if low == high else
                         f"{article} {named} of about {size:.2g} ha ({_unit_size(unit)})",
                         low < high and size != 1 / per_ha))
    fits.sort(key=lambda fitting: fitting[0])
    told = [text for _, text, _ in fits]
    return (", ".join(told[:-1]) + " or " + told[-1] if len(told) > 1 else "".join(told)), bool(fits and fits[0][2])


def _too_large(geoms: np.ndarray, span: np.ndarray | None, parcel_id: pd.Series, source: str) -> np.ndarray:
    """True where a parcel's outline spans more than ``MAX_PARCEL_SPAN_M`` in its UTM zone (``span``, m; or cannot be
    measured there: NaN), warned with their count and the first ``QUOTED_VALUES`` ids and spans; all False without a
    CRS (``span`` None)."""
    if span is None:
        return np.zeros(len(geoms), dtype=bool)
    with np.errstate(invalid="ignore"):
        too_large = usable_geometries(geoms) & ~(span <= MAX_PARCEL_SPAN_M)
    _warn_not_measured(too_large, lambda i: f"{span[i] / 1000:.3g} km", parcel_id, source,
                       f"outlines span more than {MAX_PARCEL_SPAN_M / 1000:g} km on the ground, which no field does",
                       "a vertex is likely mistyped or misplaced", "PARCEL_TOO_LARGE",
                       "check their vertices (the outputs draw each outline)")
    return too_large


def _too_small(geoms: np.ndarray, area_m2: np.ndarray | None, parcel_id: pd.Series, source: str) -> np.ndarray:
    """True where a parcel's outline encloses less than ``SPECK_M2`` in its UTM zone (``area_m2``, m2), warned with
    their count and the first ``QUOTED_VALUES`` ids and areas; all False without a CRS (``area_m2`` None)."""
    if area_m2 is None:
        return np.zeros(len(geoms), dtype=bool)
    too_small = usable_geometries(geoms) & (area_m2 < SPECK_M2)
    _warn_not_measured(too_small, lambda i: f"{area_m2[i]:.5g} m2", parcel_id, source,
                       f"outlines enclose less than {SPECK_M2:g} m2 on the ground, which no field does",
                       "each is likely a stray click, or coordinates in other units than the file's CRS",
                       "PARCEL_TOO_SMALL", "check their outlines (the outputs draw each one)")
    return too_small


def _too_many_vertices(geoms: np.ndarray, parcel_id: pd.Series, source: str) -> np.ndarray:
    """True where an outline has more than ``MAX_PARCEL_VERTICES`` vertices, warned with their count and the first
    ``QUOTED_VALUES`` ids and vertex counts."""
    vertices = shapely.get_num_coordinates(geoms)
    too_many = vertices > MAX_PARCEL_VERTICES
    _warn_not_measured(too_many, lambda i: f"{vertices[i]:,} vertices", parcel_id, source,
                       f"outlines have more than {MAX_PARCEL_VERTICES:,} vertices, which no drawn or walked field has",
                       "they are likely generated or corrupted, and a spiky one takes GEOS minutes to check",
                       "TOO_MANY_VERTICES", "simplify their outlines")
    return too_many


def _warn_not_measured(flagged: np.ndarray, measure: Callable[[int], str], parcel_id: pd.Series, source: str,
                       problem: str, cause: str, code: str, advice: str, outcome: str = "not measured, the others are",
                       level: int = logging.WARNING) -> None:
    """Warn (or note, at ``level``) of the parcels ``flagged`` with ``code`` and not measured (or ``outcome``) for
    their outlines' ``problem``: their count, and the first ``QUOTED_VALUES`` ids, each with ``measure`` of its row."""
    if rows := np.flatnonzero(flagged).tolist():
        quoted = ", ".join(f"{parcel_id.iloc[i]}: {measure(i)}" for i in rows[:QUOTED_VALUES])
        logger.log(level, "%s: %d parcels' %s (%s%s): %s; they are flagged %s and %s; %s", source, len(rows), problem,
                   quoted, ", ..." if len(rows) > QUOTED_VALUES else "", cause, code, outcome, advice)


def _warn_unusable(geometry_reasons: list[tuple[int, str]], outlines: np.ndarray, parcel_id: pd.Series,
                   source: str) -> None:
    """Warn once per code of the parcels ``geometry_reasons`` flags for outlines that cannot be used (EMPTY_GEOMETRY,
    NOT_A_POLYGON, IMPOSSIBLE_COORDINATES), each quoted with what its outline (``outlines``, as read) is; note those
    repaired (GEOMETRY_REPAIRED: measured, referred)."""
    rows = {code: np.zeros(len(outlines), dtype=bool) for code in GEOMETRY_PROBLEMS}
    for i, code in geometry_reasons:
        if code in rows:
            rows[code][i] = True
    for code, (problem, cause, advice) in GEOMETRY_PROBLEMS.items():
        repaired = code == "GEOMETRY_REPAIRED"
        _warn_not_measured(rows[code], lambda i, code=code: _outline_kind(outlines[i], code), parcel_id, source,
                           problem, cause, code, advice,
                           "referred, measured as repaired" if repaired else "not assessed, the others are",
                           logging.INFO if repaired else logging.WARNING)


def _outline_kind(outline: shapely.Geometry | None, code: str = "") -> str:
    """What an outline read is, as a message quotes it: its geometry type (Point), "empty Polygon", "none", or, one
    flagged ``code`` EMPTY_GEOMETRY, "Polygon enclosing no area"."""
    if shapely.is_missing(outline):
        return "none"
    if outline.is_empty:
        return f"empty {outline.geom_type}"
    return f"{outline.geom_type} enclosing no area" if code == "EMPTY_GEOMETRY" else outline.geom_type


def _refuse_no_polygon(geometry: np.ndarray, outlines: np.ndarray, geometry_reasons: list[tuple[int, str]],
                       source: str) -> None:
    """Refuse a file none of whose rows is a polygon that can be measured (``geometry``: repaired, ``outlines``: as
    read), naming the geometry types it holds: points, lines or empty rows only are another layer than the fields'.

    Raises:
        InputError: naming the count of each kind of outline (``_outline_kind``), and the layer to export.
    """
    if usable_geometries(geometry).any():
        return
    codes = dict(geometry_reasons)
    kinds = pd.Series([_outline_kind(outline, codes.get(i, "")) for i, outline in enumerate(outlines)]).value_counts()
    found = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    raise InputError(f"{source}: no parcel is a polygon that can be measured ({found}): parcels are fields' outlines, "
                     "as polygons; export the parcels' polygon layer, not their points or boundary lines")


def flag_parts_apart(parcels: gpd.GeoDataFrame, max_gap_m: float, source: str) -> gpd.GeoDataFrame:
    """``parcels`` (as ``validate_parcels`` returns them), those whose outline is of fields more than ``max_gap_m``
    apart flagged PARTS_APART (refer: fields of their own pledged as one) and warned of once with the first ids and
    gaps. The fields are ``_fields``, in its UTM zone: a MultiPolygon's polygons, a polygon's bodies joined by a
    strip under ``MIN_FIELD_WIDTH_M`` wide, specks under ``MIN_FIELD_AREA_M2`` gone; they lie apart (``_apart_gap``)
    where those of ``MIN_LINK_AREA_M2`` linked by gaps of at most ``max_gap_m`` (a field cut by a road), smaller ones
    by gaps of ``MAX_HOP_M``, are more than one group, or another lies farther than that from every group (the gap
    given is the shortest such).

    Example:
        >>> apart = shapely.MultiPolygon([shapely.box(500_000, 4e6, 500_100, 4e6 + 100),
        ...                               shapely.box(502_000, 4e6, 502_100, 4e6 + 100)])
        >>> joined = shapely.union(apart, shapely.box(500_100, 4e6, 502_000, 4e6 + 1))  # a 1 m strip between them
        >>> parcels = gpd.GeoDataFrame({"parcel_id": ["P1", "P2"], "reasons": [[], []]}, geometry=[apart, joined],
        ...                            crs="EPSG:32650")
        >>> flag_parts_apart(parcels, 100.0, "parcels")["reasons"].tolist()
        [['PARTS_APART'], ['PARTS_APART']]
    """
    geoms = parcels.geometry.to_numpy()
    measured = np.flatnonzero(usable_geometries(geoms) & ~map_only(parcels["reasons"]))
    gap_m = np.zeros(len(geoms))
    if measured.size and parcels.crs is not None:
        zoned, metres_per_unit = _in_utm_zones(geoms[measured], parcels.crs)
        # No two fields of an outline lie farther apart than its extent's diagonal: only outlines whose diagonal may
        # pass max_gap_m are opened (most smallholders' are shorter; opening every outline took 2 s a 100,000).
        minx, miny, maxx, maxy = shapely.bounds(zoned).T
        wide = np.flatnonzero(np.hypot(maxx - minx, maxy - miny) * metres_per_unit / UTM_MIN_SCALE > max_gap_m)
        width = MIN_FIELD_WIDTH_M / metres_per_unit[wide]
        # Closed first: slits cut into a field, or a field drawn as strips a hair apart (to make it narrow, so kept
        # whole with its corridors), are filled. Mitred, not rounded, joins: twice as fast; a notch's sharp corner
        # eroded deeper splits no fields apart.
        closed = shapely.buffer(shapely.buffer(zoned[wide], width / 2, join_style="mitre"), -width / 2,
                                join_style="mitre")
        cores = shapely.buffer(closed, -width / 2, join_style="mitre")
        several = (shapely.get_num_geometries(cores) > 1) | (shapely.get_num_geometries(closed) > 1)
        for k, outline in zip(wide[several], closed[several], strict=True):
            metres = metres_per_unit[k]
            fields = _fields(outline, MIN_FIELD_WIDTH_M / metres, MIN_FIELD_AREA_M2 / metres**2,
                             MIN_BODY_WIDTH_M / metres)
            gap_m[measured[k]] = (_apart_gap(fields, max_gap_m / metres, MIN_FIELD_WIDTH_M / metres,
                                             MIN_LINK_AREA_M2 / metres**2, MAX_HOP_M / metres) * metres
                                  if fields.size else 0.0)
    flagged = gap_m > max_gap_m
    _warn_not_measured(flagged, lambda i: f"{gap_m[i]:,.0f} m", parcels["parcel_id"], source,
                       f"outlines are of fields lying more than {max_gap_m:g} m apart (parcels.max_part_gap_m; "
                       f"strips under {MIN_FIELD_WIDTH_M:g} m wide joining fields and specks under "
                       f"{MIN_FIELD_AREA_M2:g} m² are no field)",
                       "they are fields of their own pledged as one, a weak one's health averaged into the others'",
                       "PARTS_APART", "draw each field as its own parcel", "referred")
    if not flagged.any():
        return parcels
    return parcels.assign(reasons=[[*codes, "PARTS_APART"] if apart else codes
                                   for codes, apart in zip(parcels["reasons"], flagged, strict=True)])


def _fields(outline: shapely.Geometry, width: float, min_area: float, body_width: float) -> np.ndarray:
    """The fields of ``outline`` (in units of metres' scale, closed by ``width``: grown and eroded back by half): each
    of its polygons of at least ``min_area``, as the pieces of it opened by ``width`` (eroded and grown back) of at
    least ``min_area`` where one is at least ``body_width`` wide (a field's body, its thin strips off: they join it
    to others or reach towards them), else whole (one narrow field: a terrace whose width dips under ``width``).

    Example:
        >>> joined = shapely.union_all([shapely.box(0, 0, 100, 100), shapely.box(100, 0, 400, 1),
        ...                             shapely.box(400, 0, 500, 100)])  # two fields joined by a 1 m strip
        >>> terrace = shapely.union_all([shapely.box(0, 0, 300, 6), shapely.box(300, 0.7, 450, 5.3),
        ...                              shapely.box(450, 0, 750, 6)])  # 6 m wide, 4.6 m for 150 m
        >>> len(_fields(joined, 5.0, 100.0, 10.0)), len(_fields(terrace, 5.0, 100.0, 10.0))
        (2, 1)
    """
    fields = []
    for polygon in shapely.get_parts(outline):
        if polygon.area < min_area:
            continue
        opened = shapely.buffer(shapely.buffer(polygon, -width / 2, join_style="mitre"), width / 2, join_style="mitre")
        pieces = shapely.get_parts(opened)
        pieces = pieces[shapely.area(pieces) >= min_area]
        bodies = 2 * shapely.area(pieces) >= body_width * shapely.length(pieces)
        fields.extend(pieces if bodies.any() else [polygon])
    return np.array(fields, dtype=object)


def _apart_gap(fields: np.ndarray, max_gap: float, link_width: float, link_area: float, hop: float) -> float:
    """The shortest gap by which ``fields`` (polygons) lie more than ``max_gap`` apart, 0 where they do not. Fields at
    least ``link_width`` wide (twice their area over their perimeter) link within ``hop`` (terraces on risers), and
    those also of ``link_area`` within ``max_gap``; thinner ones (a lane drawn as a polygon of its own) link none.
    Apart are the groups so linked that hold a field of ``link_area`` and lie more than ``max_gap`` from each other,
    and the fields no chain of any fields, each gap at most that, reaches from them; of fields none of which is of
    ``link_area``, their groups linked within ``max_gap``.

    Example:
        >>> lane = shapely.box(100, 40, 400, 41)  # a 1 m lane drawn as a polygon of its own
        >>> fields = np.array([shapely.box(0, 0, 100, 100), lane, shapely.box(400, 0, 500, 100)])
        >>> terraces = np.array([shapely.box(0, 0, 40, 30)] + [shapely.box(0, 40 + 19 * k, 40, 48 + 19 * k)
        ...                                                    for k in range(10)] + [shapely.box(0, 230, 40, 260)])
        >>> _apart_gap(fields, 100.0, 5.0, 400.0, 20.0), _apart_gap(terraces, 100.0, 5.0, 400.0, 20.0)
        (300.0, 0.0)
    """
    area = shapely.area(fields)
    wide = 2 * area >= link_width * shapely.length(fields)
    linking = wide & (area >= link_area)
    if not linking.any():
        return _gap_between_groups(fields, max_gap)
    apart = shapely.distance(fields[:, np.newaxis], fields[np.newaxis, :])
    links = (linking[:, np.newaxis] & linking & (apart <= max_gap)) | (wide[:, np.newaxis] & wide & (apart <= hop))
    _, group = connected_components(csr_matrix(links), directed=False)
    held = np.unique(group[linking])
    merged = np.array([shapely.union_all(fields[group == g]) for g in held])
    gap = _gap_between_groups(merged, max_gap) if len(merged) > 1 else 0.0
    _, reach = connected_components(csr_matrix(apart <= max_gap), directed=False)
    unreached = ~np.isin(reach, reach[linking])
    if unreached.any():
        gap = min(gap or np.inf, apart[np.ix_(unreached, ~unreached)].min())
    return float(gap)


def _gap_between_groups(parts: np.ndarray, max_gap: float) -> float:
    """The shortest distance between two groups of ``parts`` (polygons), each group the parts linked by gaps of at
    most ``max_gap`` (single linkage: a field cut by a road is one group); 0 where they are all one.

    Example:
        >>> road_cut = [shapely.box(0, 0, 100, 100), shapely.box(110, 0, 210, 100)]
        >>> _gap_between_groups(np.array(road_cut + [shapely.box(2000, 0, 2100, 100)]), 100.0)
        1790.0
    """
    apart = shapely.distance(parts[:, np.newaxis], parts[np.newaxis, :])
    n_groups, group = connected_components(csr_matrix(apart <= max_gap), directed=False)
    if n_groups == 1:
        return 0.0
    return float(apart[group[:, np.newaxis] != group[np.newaxis, :]].min())


def _impossible_coordinates(geoms: np.ndarray, crs: CRS | None) -> np.ndarray:
    """True where a geometry's bounds are not finite or lie off the globe in ``crs`` (latitude beyond 90 degrees,
    longitude beyond 180 or 360, a projected point with no place on the earth): a typo or a file in another CRS
    than it declares."""
    bad = np.zeros(len(geoms), dtype=bool)
    usable = np.flatnonzero(usable_geometries(geoms))
    if crs is None or crs.geodetic_crs is None or usable.size == 0:
        return bad  # an engineering CRS has no place on the earth to check against
    x0, y0, x1, y1 = shapely.bounds(geoms[usable]).T
    bad[usable] = _off_globe(np.concatenate([x0, x0, x1, x1]), np.concatenate([y0, y1, y0, y1]), crs
                             ).reshape(4, -1).any(axis=0)
    return bad


def _off_globe(xs: np.ndarray, ys: np.ndarray, crs: CRS) -> np.ndarray:
    """True where a point in ``crs`` (one with a geodetic CRS) has no place on the earth."""
    if not crs.is_geographic:
        xs, ys = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(xs, ys, errcheck=False)
    with np.errstate(invalid="ignore"):
        return ~(np.isfinite(xs) & np.isfinite(ys) & (np.abs(ys) <= 90) & (xs >= -180) & (xs <= 360))


def _first_off_globe_vertex(geom: object, crs: CRS) -> tuple[float, float]:
    """The first vertex of ``geom`` (one ``_impossible_coordinates`` found) with no place on the earth in ``crs``, as
    written (a message quoting the first vertex quoted a good one); the first vertex where only a corner of its bounds
    is off the earth."""
    coordinates = shapely.get_coordinates(geom)
    off = np.flatnonzero(_off_globe(coordinates[:, 0], coordinates[:, 1], crs))
    x, y = coordinates[off[0] if off.size else 0]
    return float(x), float(y)


def _off_globe_advice(x: float, y: float, crs: CRS, geojson: bool) -> str:
    """What a vertex ``x``, ``y`` off the globe in ``crs`` (a file's every parcel is) says of the CRS its coordinates
    are in, and how to write that into the file (``geojson``: a GeoJSON file, EPSG:4326 where it names no CRS)."""
    causes = []
    if crs.is_geographic and abs(x) <= 90 < abs(y) <= 180:
        causes.append(f"latitude and longitude look swapped ({x:g} is a latitude, {y:g} a longitude): write each "
                      "vertex longitude first (QGIS: Swap X and Y coordinates)")
    if zone := _gauss_kruger_zone(x):
        width, number = zone
        labelled = _zone_crs(crs, width, number, numbered=True)
        causes.append(f"the easting {x:.0f} begins with {width}-degree Gauss-Kruger zone number {number} (central "
                      f"meridian {_central_meridian(width, number)}E), as surveys write it: label the file with the "
                      f"CRS whose eastings carry it, {labelled.to_string()} ({labelled.name}), e.g. ogr2ogr -a_srs "
                      f"{labelled.to_string()} fixed.gpkg FILE")
    elif (zone := _gauss_kruger_zone(_false_easting(crs))) and 100_000 <= x <= 900_000:
        width, number = zone
        labelled = _zone_crs(crs, width, number, numbered=False)
        causes.append(f"the easting {x:.0f} lacks the zone number {number} that the eastings of {crs.to_string()} "
                      f"({crs.name}) begin with: label the file with the CRS of eastings without it, "
                      f"{labelled.to_string()} ({labelled.name}), e.g. ogr2ogr -a_srs {labelled.to_string()} "
                      "fixed.gpkg FILE")
    if crs.is_geographic and 180 < abs(x) <= WEB_MERCATOR_HALF_WIDTH_M and abs(y) <= WEB_MERCATOR_HALF_WIDTH_M:
        causes.append("they look like metres, not degrees: Web Mercator's, as web maps export (e.g. ogr2ogr -a_srs "
                      "EPSG:3857 fixed.gpkg FILE), or a UTM or Gauss-Kruger zone's")
    advice = "; or ".join(causes) or ("write the coordinates' true CRS into the file (e.g. ogr2ogr -a_srs EPSG:XXXX "
                                      "fixed.gpkg FILE)")
    if geojson and crs.is_geographic:
        advice += ("; a GeoJSON without a 'crs' member (or with one GDAL does not read, such as a linked one) is "
                   "EPSG:4326 by its standard")
    return advice


def _gauss_kruger_zone(easting: float) -> tuple[int, int] | None:
    """The (zone width in degrees, zone number) of ``GAUSS_KRUGER_ZONES`` that an easting written with its zone number
    before it (38498600: zone 38, 498,600 m) carries; None where it carries none."""
    number, within = divmod(easting, 1_000_000)
    if not 100_000 <= within <= 900_000:  # also NaN, of an infinite easting
        return None
    return next(((width, int(number)) for width, zones in GAUSS_KRUGER_ZONES.items() if int(number) in zones), None)


def _declares(values: pd.Series) -> pd.Series:
    """Rows of a declared-area column that declare one: neither blank nor exactly 0 (what a Shapefile, which cannot
    leave a number blank, writes for none: ``DECLARED_AREA_ZERO``)."""
    return values.notna() & values.astype(str).str.strip().ne("") & pd.to_numeric(values, errors="coerce").ne(0)


def _declared_apart(hectares: pd.Series, mu: pd.Series) -> np.ndarray:
    """Per row, whether its declared area in ``hectares`` and in ``mu`` are two declarations: all False where they
    give one twice, every row's hectares its mu / ``MU_PER_HA`` to the square metre as a run's results write them, or
    neither."""
    # 0 is none declared (``_declares``), as a blank.
    hectares, mu = (pd.to_numeric(values, errors="coerce").replace(0, np.nan) for values in (hectares, mu))
    worked_out = (mu / MU_PER_HA).round(4)
    return (~((hectares - worked_out).abs().le(5e-5) | (hectares.isna() & mu.isna()))).to_numpy()


def _central_meridian(width: int, number: int) -> int:
    """The central meridian (degrees east) of ``width``-degree Gauss-Kruger zone ``number``."""
    return width * number - (3 if width == 6 else 0)


def _false_easting(crs: CRS) -> float:
    """``crs``'s false easting (m; NaN for a CRS without one, a geographic one)."""
    operation = crs.coordinate_operation
    return next((float(p.value) for p in (operation.params if operation else ()) if p.name == "False easting"),
                float("nan"))


def _zone_crs(crs: CRS, width: int, number: int, numbered: bool) -> CRS:
    """The CRS of ``width``-degree Gauss-Kruger zone ``number`` whose eastings carry the zone number (``numbered``) or
    not, on ``crs``'s datum where EPSG has one (Beijing 1954, Xian 1980, New Beijing, CGCS2000), else CGCS2000's."""
    zone = f"zone {number}" if numbered else f"CM {_central_meridian(width, number)}E"
    projection = f"{'3-degree ' if width == 3 else ''}Gauss-Kruger {zone}"
    try:
        return CRS.from_user_input(f"{crs.name.split(' / ')[0]} / {projection}")
    except CRSError:
        return CRS.from_user_input(f"CGCS2000 / {projection}")


def _not_finite_coordinates(geoms: np.ndarray) -> np.ndarray:
    """True where a geometry has an x or y that is NaN or infinite (a vertex written NaN): its bounds, taken over the
    finite ones, look possible, and GEOS repairs it away as a crossing."""
    coordinates, rows = shapely.get_coordinates(geoms, return_index=True)
    bad = np.zeros(len(geoms), dtype=bool)
    bad[rows[~np.isfinite(coordinates).all(axis=1)]] = True
    return bad


def _id_text(values: pd.Series, source: object) -> pd.Series:
    """Ids as text without surrounding blanks ("B0012 " is B0012); whole-number floats (integer ids with a blank,
    read as float) lose the '.0', and so does text written so (101.0, as a spreadsheet exports a number cell, beside
    101: one borrower).

    Raises:
        InputError: whole-number ids read as floating point beyond 2^53, whose last digits are already lost (a
            20-digit id overflows the file reader's integers).
    """
    if pd.api.types.is_float_dtype(values) and np.all(np.isnan(values) | (values == np.round(values))):
        if (np.abs(values) > 2**53).any():
            raise InputError(f"{source}: {values.name} values such as {values[np.abs(values) > 2**53].iloc[0]:.0f} (as "
                             "read) are too long for a number column to keep every digit; store the ids as text")
        values = values.astype("Int64")
    text = values.astype("string").str.strip().str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    return text.where(text != "", pd.NA)


def _check_excel_ids(ids: pd.Series, source: str, file_rows: np.ndarray) -> None:
    """Refuse ids Excel saved in scientific notation (``EXCEL_SCIENTIFIC``); warn of long numeric ids whose last
    digits Excel likely zeroed (``EXCEL_ZEROED``, not a valid resident ID number), naming the column and how many
    distinct ids.

    Raises:
        InputError: naming the column, the first rows (``file_rows``: each row's number in the file, from 1, the
            header not counted) and their ids, and how to keep the ids whole in Excel.
    """
    text = ids.fillna("")
    if rows := np.flatnonzero(text.map(lambda name: bool(EXCEL_SCIENTIFIC.fullmatch(name))).to_numpy()).tolist():
        quoted = ", ".join(f"row {file_rows[i]}: {ids.iloc[i]}" for i in rows[:QUOTED_VALUES])
        raise InputError(
            f"{source}: {len(rows)} {ids.name} values are in Excel's scientific notation ({quoted}"
            f"{', ...' if len(rows) > QUOTED_VALUES else ''}): Excel shows and saves a number of 12 digits or more so, "
            "keeping only its first digits, and the ids of different farmers read as one; in Excel, format the "
            f"{ids.name} column as Text (设置单元格格式 > 文本), enter the ids again in full, and save it again")
    # A valid resident ID number ending in 000 is one in 1,000 typed whole, but one in 11 zeroed ones passes the check
    # too: it is spared only where the column shows ids kept whole (some valid one ends otherwise).
    names = text.unique()
    whole = any(_resident_id(name) and not name.endswith("000") for name in names)
    if zeroed := len({name for name in names if EXCEL_ZEROED.fullmatch(name) and not (whole and _resident_id(name))}):
        logger.warning("%s: %d distinct %s values are numbers of 16 to 19 digits ending in 000 (and not resident ID "
                       "numbers whose check character holds), as Excel leaves an ID-card number typed into a number "
                       "cell (it keeps 15 digits and zeroes the rest): if so, ids that differed in their last digits "
                       "now read as one; in Excel, format the %s column as Text (设置单元格格式 > 文本) and enter the "
                       "ids again in full", source, zeroed, ids.name, ids.name)


def _resident_id(name: str) -> bool:
    """Whether ``name`` is 18 characters whose last is the check character of its first 17 digits (GB 11643).

    Example:
        >>> _resident_id("410102199001016000"), _resident_id("410102199001011000")
        (True, False)
    """
    if len(name) != 18 or not name[:17].isdigit():
        return False
    return RESIDENT_ID_CHECK[sum(int(d) * w for d, w in zip(name, RESIDENT_ID_WEIGHTS)) % 11] == name[17].upper()


def id_key(name: str) -> str:
    """The id a reader takes ``name`` for: ``folded``, blanks within off, ``as_read``, a number's leading zeros off.

    Example:
        >>> id_key("b 0026") == id_key("B0026") == id_key("B0026\u200b") == id_key("\u0412\u0660026")
        True
    """
    return re.sub(r"^0+(?=\d)", "", as_read("".join(folded(name).split())))


def as_read(name: str) -> str:
    """``name`` as it reads: its invisible characters off (Unicode's format characters: a zero-width space, joiner or
    non-joiner, a byte-order mark, a left-to-right or right-to-left mark, a soft hyphen), each digit of another
    script the ASCII one (Arabic-Indic ٠ as 0; a full-width ０ is left to ``folded``, as its width shows) and each
    ``LOOK_ALIKE_LETTERS`` letter its Latin one.

    Example:
        >>> as_read("\u0412\u0660\u200b15\u06f0")
        'B0150'
    """
    return name if name.isascii() else name.translate(_reading())


@functools.cache
def _reading() -> dict[int, str | None]:
    """``as_read``'s table for ``str.translate`` (a scan of Unicode, of about 0.4 s, once)."""
    table: dict[int, str | None] = {ord(letter): latin for letter, latin in LOOK_ALIKE_LETTERS.items()}
    for code in range(128, sys.maxunicode + 1):
        if (category := unicodedata.category(character := chr(code))) == "Cf":
            table[code] = None
        elif category == "Nd" and unicodedata.normalize("NFKC", character) == character:  # not full-width ０
            table[code] = str(unicodedata.decimal(character))
    return table


def _warn_id_variants(ids: pd.Series, source: str, owner: str, code: str | None = None) -> np.ndarray:
    """Warn of ids distinct as written that a reader takes for one (``id_key``: an ID-card number's X typed x or
    full-width Ｘ, 地块 003 and 地块003; B0150 with a zero-width space, a Cyrillic В or an Arabic-Indic ٠; numbers'
    leading zeros off: 00123, as typed, and 123, as a spreadsheet keeps it), naming the first few groups: they are
    kept apart as written, since ids join with the lender's systems, so one ``owner`` written two ways is two; with
    ``code``, the warning says their rows are flagged so. Returns per row whether its id is one of such a group."""
    written = pd.Series(ids.dropna().unique(), dtype=object)
    keys = written.map(id_key)
    clash = keys.duplicated(keep=False)  # grouped alone: a list per id of a million costs seconds
    groups = [" / ".join(quoted_ids(group)) for group in written[clash].groupby(keys[clash], sort=False).agg(list)]
    if groups:
        flagged = f", each of their parcels flagged {code} and referred (one {owner} or two?)" if code else ""
        counted = f"{len(groups)} groups of {ids.name} values differ" if len(groups) > 1 else \
            f"1 group of {ids.name} values differs"
        logger.warning("%s: %s only in case, width, Unicode form, blanks, invisible characters (a zero-width space), "
                       "look-alike letters (Cyrillic or Greek for Latin), digits of another script or a number's "
                       "leading zeros (%s); they are kept apart as written, as different %ss%s; write each %s's id "
                       "one way", source, counted, some(groups), owner, flagged, owner)
    return ids.isin(written[clash]).to_numpy(dtype=bool)


def _warn_duplicate_ids(repeated: pd.Series, written: pd.Series, source: str) -> None:
    """Warn once of parcels whose ``parcel_id`` another parcel has (``repeated``: their ids; ``written``: as the file
    gives them), with their count and the first few ids, each with how many parcels give it and, where the file writes
    it otherwise (1.0 beside 1, ``_id_text``), how: a file of many such parcels (a column of ids a spreadsheet
    changed) is otherwise told of only in its results' rows."""
    if repeated.empty:
        return
    counts = repeated.value_counts(sort=False)
    forms = written.astype("string").str.strip().groupby(repeated.to_numpy(), sort=False).unique()

    def told(name: str, count: int) -> str:
        as_written = list(forms[name])
        return f"{name!r}: {count} parcels" + (
            f" (written {', '.join(map(repr, as_written))})" if as_written != [name] else "")

    logger.warning("%s: %d parcels share %d parcel_id values (%s); they are flagged DUPLICATE_PARCEL_ID and not "
                   "assessed; give each parcel its own id", source, len(repeated), len(counts),
                   some([told(name, count) for name, count in counts.items()]))


def _warn_separator_ids(parcel_id: pd.Series, source: str) -> None:
    """Warn of parcel ids holding ';', which separates the ids of a borrower's parcels in the borrowers tables' text
    lists, naming the first few."""
    if with_separator := [name for name in parcel_id.dropna().unique() if ";" in name]:
        logger.warning("%s: %d parcel_id values hold ';' (%s), which separates the ids in borrowers.csv's (and "
                       ".parquet's, .gpkg's) parcel_ids and decided_by lists, where they cannot be told apart; "
                       "borrower_decisions.jsonl keeps them as lists; write ids without ';' to read them there",
                       source, len(with_separator), some(list(map(repr, with_separator))))


def quoted_ids(names: list[str]) -> list[str]:
    """The names quoted (repr), or escaped to ASCII where two read alike (é as one character and as two: NFC; a
    Cyrillic В for B, a zero-width space: ``as_read``)."""
    alike = len({as_read(unicodedata.normalize("NFC", name)) for name in names}) < len(names)
    return list(map(ascii if alike else repr, names))


def _optional_text(frame: pd.DataFrame, column: str, ids_of: object = None) -> pd.Series:
    """A text column (empty cells NA; all NA when missing); read as ids (``_id_text``) of the file ``ids_of``."""
    if column not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    if ids_of is not None:
        return _id_text(frame[column], ids_of)
    text = frame[column].astype("string")
    return text.where(text.str.strip() != "", pd.NA)


def _stand_in_ids(parcel_id: pd.Series, file_rows: np.ndarray) -> list[str | None]:
    """For each row without an id, ``row-N`` (N: its number in the file, ``file_rows``), or ``row-N-k`` where a parcel
    has that id; None elsewhere."""
    taken = set(parcel_id.dropna())
    out: list[str | None] = []
    for row, missing in zip(file_rows, parcel_id.isna()):
        stand_in = f"row-{row}" if missing else None
        k = 1
        while stand_in in taken:
            k += 1
            stand_in = f"row-{row}-{k}"
        taken.add(stand_in)
        out.append(stand_in)
    return out


def repair_geometries(geoms: np.ndarray) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Repair invalid polygons (make_valid, keep the polygonal part); flag what cannot be used. A geometry collection
    counts as its polygons (a phone's KML placemark of a field and a label pin); one without any is not a polygon.

    Returns:
        The geometries (None where unusable) and (position, EMPTY_GEOMETRY / NOT_A_POLYGON / GEOMETRY_REPAIRED).
    """
    geoms = np.asarray(geoms, dtype=object).copy()
    collections = np.flatnonzero(usable_geometries(geoms) & (shapely.get_type_id(geoms) == 7))
    for i in collections:
        polygons = [p for part in shapely.get_parts(geoms[i]) for p in shapely.get_parts(part)
                    if p.geom_type == "Polygon"]
        if polygons:
            geoms[i] = polygons[0] if len(polygons) == 1 else shapely.multipolygons(polygons)
    problems: list[tuple[int, str]] = []
    out = geoms.copy()
    missing = ~usable_geometries(geoms)
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))  # Polygon, MultiPolygon
    for i in np.flatnonzero(missing):
        problems.append((int(i), "EMPTY_GEOMETRY"))
        out[i] = None
    for i in np.flatnonzero(~missing & ~polygonal):
        problems.append((int(i), "NOT_A_POLYGON"))
        out[i] = None
    invalid = ~missing & polygonal & ~shapely.is_valid(geoms)
    for i in np.flatnonzero(invalid):
        # "structure": parts and loops that overlap are one field (the default, "linework", makes their overlap a hole).
        repaired = _polygonal_part(shapely.make_valid(geoms[i], method="structure", keep_collapsed=False))
        if repaired is None:
            problems.append((int(i), "EMPTY_GEOMETRY"))
        else:
            problems.append((int(i), "GEOMETRY_REPAIRED"))
        out[i] = repaired
    return out, problems


def _flat(geoms: np.ndarray) -> np.ndarray:
    """True where a polygon encloses no area for its perimeter (``FLAT_SHAPE``: its vertices on one line)."""
    kept = np.flatnonzero(usable_geometries(geoms))
    flat = np.zeros(len(geoms), dtype=bool)
    flat[kept] = shapely.area(geoms[kept]) < FLAT_SHAPE * shapely.length(geoms[kept]) ** 2
    return flat


def _polygonal_part(geom: shapely.Geometry) -> shapely.Geometry | None:
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon") and p.area > 0]
    if not parts:
        return None
    merged = shapely.union_all(parts)
    return merged if not merged.is_empty else None
