"""Where the demo city is: Shenzhen's districts (centres, spread, streets, landmarks) and the operators
who run parking in them. Data only; the generator in hub.seed.demo draws from it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class District:
    code: str
    name: str
    lon: float
    lat: float
    spread_m: float
    weight: float
    street_bearing_deg: float
    streets: tuple[str, ...]
    landmarks: tuple[str, ...]


DISTRICTS: tuple[District, ...] = (
    District(
        "FT",
        "Futian",
        114.055,
        22.540,
        2_500,
        0.20,
        0,
        (
            "Shennan Boulevard",
            "Fuhua 3rd Road",
            "Yitian Road",
            "Jintian Road",
            "Caitian Road",
            "Xinzhou Road",
            "Hongli West Road",
            "Binhe Boulevard",
            "Huaqiang North Road",
            "Fuzhong 1st Road",
            "Xiangmihu Road",
        ),
        ("Civic Center", "Convention Center", "Coco Park", "Huaqiangbei", "Chegongmiao", "Xiangmihu", "Futian Port"),
    ),
    District(
        "LH",
        "Luohu",
        114.122,
        22.552,
        2_300,
        0.15,
        8,
        (
            "Jianshe Road",
            "Dongmen Middle Road",
            "Renmin South Road",
            "Shennan East Road",
            "Heping Road",
            "Huangbei Road",
            "Cuizhu Road",
            "Sungang Road",
            "Chunfeng Road",
        ),
        ("Dongmen", "Guomao", "Luohu Station", "MixC", "Sungang", "Cuizhu", "Laojie"),
    ),
    District(
        "NS",
        "Nanshan",
        113.930,
        22.525,
        3_200,
        0.20,
        -12,
        (
            "Nanhai Avenue",
            "Keyuan Road",
            "Shahe West Road",
            "Houhai Avenue",
            "Nanshan Avenue",
            "Gaoxin South 4th Road",
            "Wanghai Road",
            "Taoyuan Road",
            "Chuangye Road",
            "Dengliang Road",
        ),
        ("Science Park", "Shekou", "Houhai", "Coastal City", "Window of the World", "Xili", "Qianhai", "Sea World"),
    ),
    District(
        "BA",
        "Bao'an",
        113.885,
        22.565,
        3_800,
        0.15,
        -25,
        (
            "Bao'an Avenue",
            "Xin'an 6th Road",
            "Xixiang Avenue",
            "Qianjin 1st Road",
            "Chuangye 1st Road",
            "Jichang Road",
            "Fuyong Avenue",
            "Shajing Road",
        ),
        ("Bao'an Center", "Xixiang", "Airport East", "Fuyong", "Shajing", "Xin'an", "Bao'an Stadium"),
    ),
    District(
        "LG",
        "Longgang",
        114.250,
        22.720,
        4_500,
        0.12,
        20,
        (
            "Longgang Avenue",
            "Longxiang Avenue",
            "Huangge Road",
            "Buji Road",
            "Bantian Huanan Avenue",
            "Longcheng Avenue",
            "Qinghua Road",
        ),
        ("Longgang Center", "Buji", "Bantian", "Universiade Center", "Henggang", "Longcheng Square"),
    ),
    District(
        "LW",
        "Longhua",
        114.040,
        22.655,
        3_800,
        0.08,
        5,
        ("Longhua Avenue", "Minzhi Avenue", "Meilong Road", "Guanlan Avenue", "Renmin Road", "Longguan Road"),
        ("Longhua", "Minzhi", "Shenzhen North Station", "Guanlan", "Dalang"),
    ),
    District(
        "YT",
        "Yantian",
        114.237,
        22.560,
        2_200,
        0.03,
        30,
        ("Shayan Road", "Yantian Road", "Shenyan Road", "Haishan Road"),
        ("Yantian Port", "Shatoujiao", "Dameisha"),
    ),
    District(
        "GM",
        "Guangming",
        113.935,
        22.755,
        3_800,
        0.04,
        -5,
        ("Guangming Avenue", "Gongming Avenue", "Huaxia Road", "Songbai Road"),
        ("Guangming", "Gongming", "Guangming City Station"),
    ),
    District(
        "PS",
        "Pingshan",
        114.345,
        22.700,
        3_200,
        0.03,
        15,
        ("Pingshan Avenue", "Dongzong Road", "Kengzi Avenue", "Jinniu Road"),
        ("Pingshan", "Kengzi", "Pingshan Sports Center"),
    ),
)
DISTRICTS_BY_CODE = {district.code: district for district in DISTRICTS}
# The districts a driver most often searches in (the benchmark's query points come from these).
DENSE_DISTRICT_CODES = ("FT", "LH", "NS", "BA", "LG")


@dataclass(frozen=True)
class OperatorProfile:
    slug: str
    name: str
    # How likely a facility in a district belongs to this operator (relative to other operators there).
    district_affinity: dict[str, float]
    # The chance that a facility of this operator is an off-street lot rather than a curb zone.
    lot_share: float
    ev_share_lot: float = 0.05
    shared_share_lot: float = 0.04


OPERATORS: tuple[OperatorProfile, ...] = (
    OperatorProfile(
        "sz-curbside",
        "Shenzhen Curbside Parking Co., Ltd.",
        {code: 1.0 for code in DISTRICTS_BY_CODE},
        lot_share=0.0,
    ),
    OperatorProfile("futian-cbd-parking", "Futian CBD Parking Management Co.", {"FT": 1.0, "LH": 0.2}, 0.3),
    OperatorProfile("luohu-dongmen-garages", "Luohu Dongmen Garages", {"LH": 1.0, "YT": 0.6}, 0.3),
    OperatorProfile("nanshan-techpark-parking", "Nanshan Science Park Parking Services", {"NS": 1.0}, 0.3),
    OperatorProfile("qianhai-shekou-parking", "Qianhai Shekou Harbour Parking", {"NS": 0.6, "BA": 0.3}, 0.3),
    OperatorProfile("baoan-airport-parking", "Bao'an Airport Zone Parking Co.", {"BA": 1.0, "GM": 0.5}, 0.25),
    OperatorProfile("longgang-universiade-parking", "Longgang Universiade Parking", {"LG": 1.0, "PS": 0.7}, 0.25),
    OperatorProfile("longhua-park-ride", "Longhua Metro Park & Ride", {"LW": 1.0, "GM": 0.5, "LG": 0.2}, 0.4),
    OperatorProfile(
        "pengcheng-ev-parks",
        "Pengcheng EV Charging Parks",
        {"FT": 0.3, "NS": 0.3, "BA": 0.3, "LG": 0.3, "LW": 0.3},
        0.6,
        ev_share_lot=0.30,
    ),
    OperatorProfile(
        "harbour-mall-parking",
        "Harbour City Mall Parking Group",
        {"FT": 0.4, "NS": 0.4, "LH": 0.3, "BA": 0.2},
        0.7,
        shared_share_lot=0.10,
    ),
)
