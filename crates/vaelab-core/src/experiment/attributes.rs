//! The attribute names each data source labels its images with, in file order: what
//! `eval.attribute` may name, and the columns of a dataset's attribute tensor.
use super::config::DataSource;

/// The 14 CelebA attributes the synthetic faces are labelled with, in CelebA's spelling.
pub const SYNTHETIC_ATTRIBUTES: [&str; 14] = [
    "Male",
    "Young",
    "Smiling",
    "Mouth_Slightly_Open",
    "Eyeglasses",
    "Wearing_Hat",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Gray_Hair",
    "Bangs",
    "Wavy_Hair",
    "Pale_Skin",
    "No_Beard",
];

/// The 40 attributes of CelebA's `list_attr_celeba.txt`, in file order.
pub const CELEBA_ATTRIBUTES: [&str; 40] = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
];

/// The attribute names a source provides (none for a folder of images).
pub fn attribute_names(source: DataSource) -> &'static [&'static str] {
    match source {
        DataSource::Synthetic => &SYNTHETIC_ATTRIBUTES,
        DataSource::Celeba => &CELEBA_ATTRIBUTES,
        DataSource::Folder => &[],
    }
}
