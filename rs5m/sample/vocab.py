"""Word lists for the sample world's captions: the 44 RS5M keyword patterns, surface forms that hit
exactly one pattern, keyword-free filler, near-misses and prefix false positives.

Contract: every filler string here is free of all 44 patterns under the keyword rule (case-insensitive,
a pattern matches at a word start, stems are prefixes); ``tests/sample`` checks this with a reference
matcher. ``HIT_FORMS[p]`` strings match pattern ``p`` and no other.
"""

from __future__ import annotations

from rs5m.config.build import DEFAULT_PATTERNS

# The 44 patterns of reference §3 as spelled there (matching ignores case): the filter's own list.
KEYWORD_PATTERNS: tuple[str, ...] = DEFAULT_PATTERNS

HIT_FORMS: dict[str, tuple[str, ...]] = {
    "remote sensing": ("remote sensing image", "Remote Sensing scene", "REMOTE SENSING image"),
    "earth observ": ("Earth observation image", "earth observing scene", "Earth Observatory photo"),
    "aerial imag": ("aerial image", "aerial imagery", "Aerial Images"),
    "aerial photo": ("aerial photo", "aerial photograph", "Aerial Photography"),
    "aerial map": ("aerial map", "Aerial Mapping"),
    "aerial pic": ("aerial pic", "aerial picture", "Aerial Pictures"),
    "aerial view": ("aerial view", "Aerial View", "AERIAL VIEW", "aerial views"),
    "aerial scan": ("aerial scan", "aerial scanning"),
    "aerial satellite": ("aerial satellite shot", "Aerial Satellite footage"),
    "satellite imag": ("satellite image", "satellite imagery", "Satellite Images"),
    "satellite photo": ("satellite photo", "Satellite Photograph"),
    "satellite map": ("satellite map", "Satellite Map"),
    "satellite pic": ("satellite pic", "satellite picture"),
    "satellite view": ("satellite view", "Satellite View"),
    "satellite scan": ("satellite scan", "satellite scanning"),
    "satellite data": ("satellite data composite", "Satellite Data mosaic"),
    "satellite surveillance": ("satellite surveillance image", "Satellite Surveillance still"),
    "space photo": ("space photo", "Space Photography"),
    "spaceborne photo": ("spaceborne photo", "spaceborne photograph"),
    "space-borne photo": ("space-borne photo", "Space-borne photograph"),
    "space imag": ("space image", "space imagery"),
    "spaceborne imag": ("spaceborne imagery", "Spaceborne Imaging scene"),
    "space-borne imag": ("space-borne imagery", "space-borne image"),
    "space view": ("space view", "Space View"),
    "spaceborne view": ("spaceborne view",),
    "space-borne view": ("space-borne view",),
    "space surveillance": ("space surveillance image", "space surveillance still"),
    "Google Earth": ("Google Earth screenshot", "google earth capture", "GOOGLE EARTH view"),
    "Freesound": ("Freesound field recording", "freesound.org sample"),
    "Sentinel-1": ("Sentinel-1 radar scene", "Sentinel-1A SAR image"),
    "Sentinel-2": ("Sentinel-2 image", "Sentinel-2B true colour scene"),
    "Gaofen": ("Gaofen-2 image", "GaoFen scene"),
    "USGS": ("USGS topographic map", "USGS orthophoto"),
    "NAIP": ("NAIP orthoimagery", "NAIP tile"),
    "MODIS": ("MODIS true-colour image", "Modis scene"),
    "EOSDIS": ("EOSDIS snapshot", "NASA EOSDIS granule"),
    "WorldView": ("WorldView-3 image", "Worldview-2 scene"),
    "Planet Dove": ("Planet Dove image", "Planet Doves scene"),
    "ArcGIS": ("ArcGIS basemap", "ArcGIS Pro map"),
    "Maxar": ("Maxar image", "Maxar Technologies scene"),
    "Landsat": ("Landsat 8 scene", "Landsat image"),
    "Geographic Information System": (
        "Geographic Information System map",
        "geographic information systems layer",
    ),
    "sentinel 1": ("Sentinel 1 radar scene", "sentinel 1 image"),
    "sentinel 2": ("Sentinel 2 image", "sentinel 2 scene"),
}

# How often each pattern is drawn beyond the one guaranteed use (Fig. 3: "aerial view" dominates).
PATTERN_WEIGHTS: dict[str, float] = {"aerial view": 30.0, "satellite imag": 8.0, "aerial photo": 6.0,
                                     "Google Earth": 4.0, "satellite view": 4.0, "aerial imag": 3.0,
                                     "remote sensing": 3.0, "satellite map": 2.0, "Landsat": 2.0}  # fmt: skip

# Captions that look RS-related but match no pattern under the word-start / prefix rule.
NEAR_MISSES: tuple[str, ...] = (
    "Aerospace imagery conference poster 2019",
    "NASA aerospace imaging engineer at work",
    "Cyberspace view wallpaper, abstract blue network",
    "Home office workspace photo ideas",
    "Spacecraft imaging camera on display at the museum",
    "Satellites dish installation service, 80 cm",
    "Satellite TV dish on the roof of a house",
    "Crops aerially sprayed near the river",
    "Aerial yoga class in a bright studio",
    "Aerial silks performer at the circus",
    "Earthy observations: a journal of garden life",
    "Remote sensor light for the garden, 12 W",
    "Google Maps screenshot of the route to the hotel",
    "Free sound effects pack for video games",
    "The Sentinel newspaper front page",
    "Sentinel-3 mission poster",
    "World view of a traveller: a photo essay",
    "Planet Fitness gym interior",
    "Dove soap bar on a white background",
    "Landscape photo of rolling hills at sunset",
    "Geographic information science lecture notes",
    "Myspace photo of a band from 2006",
    "Space-age photo frame, retro design",
    "Spaced photo collage of a summer holiday",
    "Satellites view in the night sky over the desert",
    "Bird's eye view of a wedding table",
    "Drone shot of a beach at low tide",
)

# Captions that DO hit under the prefix rule although they are not about RS: (text, pattern).
FALSE_POSITIVES: tuple[tuple[str, str], ...] = (
    ("Modish velvet armchair in teal", "MODIS"),
    ("Christian worldview book cover", "WorldView"),
    ("Outer space imagination coloring book for kids", "space imag"),
    ("V. S. Naipaul novel, first edition", "NAIP"),
)

PLACES: tuple[str, ...] = (
    "Downtown Chicago", "Lake Geneva", "the Nile Delta", "Rotterdam harbour", "Dubai", "Tokyo Bay",
    "Cape Town", "the Grand Canyon", "Venice", "Iceland", "Las Vegas", "the Swiss Alps", "Manhattan",
    "Hong Kong", "Paris", "Mount Fuji", "the Great Barrier Reef", "Yellowstone", "São Paulo", "Istanbul",
    "the Mekong Delta", "Lisbon", "Reykjavik", "Nairobi", "the Atacama Desert", "Kraków",
)  # fmt: skip

SCENES: tuple[str, ...] = (
    "farmland with irrigation circles", "a container port with cranes", "a highway interchange",
    "suburban houses with swimming pools", "a river delta", "an airport runway", "a dense residential area",
    "a stadium and its parking lots", "a forest clearing", "salt evaporation ponds", "a solar farm",
    "a golf course", "a harbour full of boats", "terraced rice fields", "a desert road",
    "a snowy mountain ridge", "a coastal town", "a railway yard", "a wind farm", "an open-pit quarry",
    "a meandering river", "a roundabout with heavy traffic", "a baseball field beside a park",
)  # fmt: skip

PRODUCTS: tuple[str, ...] = (
    "Women's Floral Summer Dress", "Vintage Oak Dining Chair", "Stainless steel kitchen sink 60 cm",
    "Men's leather wallet, brown", "Ceramic coffee mug with handle", "Wireless bluetooth headphones",
    "Handmade wool scarf", "Kids' rain boots with frog print", "Wooden toy train set",
    "Glass table lamp with linen shade", "Running shoes, size 42", "Cotton bed sheets, queen size",
)  # fmt: skip

EVERYDAY: tuple[str, ...] = (
    "Portrait of a smiling businesswoman in an office", "Happy family having a picnic in the park",
    "Red sports car on a mountain road", "Chocolate cake with fresh strawberries",
    "Golden retriever puppy playing in the grass", "Wedding couple walking on the beach at sunset",
    "Bowl of ramen with egg and spring onions", "Old man reading a newspaper on a bench",
    "Children playing football in the street", "Cup of cappuccino with latte art on a wooden table",
    "Logo design template with abstract shapes", "Concert crowd with hands in the air",
    "Street in Paris at night", "Sunset over Lake Geneva", "Café terrace in Lisbon ☕",
    "Kitten sleeping on a windowsill", "Bride holding a bouquet of peonies", "Graduation cap and diploma",
)  # fmt: skip

# Lower-case BLIP-style sentences (LAION-COCO all_captions, Visual Genome-like phrases).
BLIP_PLAIN: tuple[str, ...] = (
    "a woman in a red dress standing in a field", "a plate of food on a wooden table",
    "a dog sitting on a couch next to a pillow", "a man riding a bike down a street",
    "a group of people standing around a table", "a close up of a pair of shoes",
    "a kitchen with white cabinets and a window", "a bowl of soup with a spoon",
    "a little girl holding a teddy bear", "a car parked in front of a house",
    "a bird sitting on a branch of a tree", "a living room with a couch and a tv",
)  # fmt: skip

VG_PHRASES: tuple[str, ...] = (
    "man wearing a red hat", "white clouds in blue sky", "a tree with green leaves", "black and white cat",
    "window on the building", "car parked on the street", "woman holding an umbrella", "a wooden bench",
    "plate with a sandwich", "sign on the pole", "the grass is green", "a person skiing down the hill",
)  # fmt: skip

# WIT rows in other languages: (language, caption, patterns it plants). Rejected as non_english.
FOREIGN: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("de", "Luftbild von Hamburg mit dem Hafen", ()), ("fr", "Vue aérienne de la ville de Lyon", ()),
    ("es", "Vista aérea del puerto de Valencia", ()), ("it", "Veduta aerea di Firenze", ()),
    ("nl", "Luchtfoto van Amsterdam", ()), ("pl", "Zdjęcie lotnicze Krakowa", ()),
    ("ja", "東京湾の航空写真", ()), ("ru", "Аэрофотоснимок Москвы", ()),
    ("de", "Sentinel-2-Aufnahme der Elbmündung", ("Sentinel-2",)),
    ("fr", "Image Landsat du delta du Rhône", ("Landsat",)),
    ("pt", "Igreja de São Francisco em Salvador", ()), ("de", "Rathaus von Bremen", ()),
    ("es", "Catedral de Sevilla al atardecer", ()), ("zh", "长城的照片", ()),
)  # fmt: skip

WIKI_PLAIN: tuple[str, ...] = (
    "Coat of arms of the municipality", "The parish church seen from the south", "Portrait of the composer",
    "Town hall on the main square", "Map of the railway line", "The castle in winter",
    "Statue in front of the museum", "Players of the national team in 1998", "The lighthouse at dusk",
)  # fmt: skip

FLICKR_TITLES: tuple[str, ...] = (
    "IMG_{n}",
    "DSC_{n}",
    "Summer holiday {y}",
    "P{n}",
    "Untitled",
    "Trip day 3",
)
TAGS: tuple[str, ...] = ("holiday", "travel", "family", "canon", "nikon", "summer", "city", "nature", "trip")
REDDIT_SUBS: tuple[tuple[str, int, int], ...] = (("earthporn", 2020, 40), ("itookapicture", 2019, 30),
                                                 ("cityporn", 2021, 20))  # fmt: skip
LABELS: tuple[tuple[str, str], ...] = (
    ("sky", "/m/01bqvp"), ("cloud", "/m/0csby"), ("urban area", "/m/039jbq"), ("landscape", "/m/025s3q0"),
    ("person", "/m/01g317"), ("smile", "/m/019nj4"), ("tree", "/m/07j7r"), ("water", "/m/0838f"),
)  # fmt: skip
